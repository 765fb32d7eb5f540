"""Reading users and organizations, and the token response every login path returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.state import AuthState
from shared.db import transaction


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class UserRecord:
    id: UUID
    org_id: UUID
    email: str
    name: str
    role: str
    password_hash: str | None
    email_verified_at: datetime | None
    created_at: datetime
    # Incremented by every password change: a login's check is only good for the version it read.
    credentials_version: int
    disabled_at: datetime | None = None

    @property
    def verified(self) -> bool:
        return self.email_verified_at is not None


@dataclass(frozen=True)
class Identity:
    """A user with their organization, as returned in token responses."""

    user: UserRecord
    org_name: str


_USER_COLUMNS = (
    "id, org_id, email, name, role, password_hash, email_verified_at, created_at,"
    " credentials_version, disabled_at"
)


async def find_user_by_email(state: AuthState, email: str) -> UserRecord | None:
    """Cross-tenant lookup (auth_identity_lookup policy), in a short transaction of its own."""
    async with transaction(state.sessionmaker) as db:
        row = (
            await db.execute(
                text(f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = :email"),  # noqa: S608
                {"email": normalize_email(email)},
            )
        ).one_or_none()
    return None if row is None else UserRecord(**row._mapping)


async def load_user(db: AsyncSession, user_id: UUID) -> UserRecord | None:
    row = (
        await db.execute(
            text(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"),  # noqa: S608
            {"id": user_id},
        )
    ).one_or_none()
    return None if row is None else UserRecord(**row._mapping)


async def lock_if_enabled(db: AsyncSession, user_id: UUID) -> bool:
    """Share-lock the user row (tenant bound) and say whether the user may hold a session.

    The lock conflicts with an operator's `disable`, which revokes sessions in its own
    transaction: a session is either created first (and then revoked) or refused.
    """
    enabled = (
        await db.execute(
            text("SELECT disabled_at IS NULL FROM users WHERE id = :id FOR SHARE"), {"id": user_id}
        )
    ).scalar_one_or_none()
    return bool(enabled)


async def load_identity(db: AsyncSession, user_id: UUID) -> Identity | None:
    """The user and their org; the transaction must be bound to the user's org."""
    user = await load_user(db, user_id)
    if user is None:
        return None
    org_name = (
        await db.execute(text("SELECT name FROM organizations WHERE id = :id"), {"id": user.org_id})
    ).scalar_one_or_none()
    if org_name is None:
        return None
    return Identity(user, org_name)
