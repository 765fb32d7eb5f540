"""SQL of users and organizations, as every login path reads them.

`user_by_email` is a cross-tenant read (the auth_identity_lookup policy); the others run in a
transaction bound to the user's org.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.roles import Role
from shared.rows import exists, one_or_none


class UserRecord(BaseModel):
    """A user as the login paths need it (the role is validated into `Role`)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    org_id: UUID
    email: str
    name: str
    role: Role
    password_hash: str | None
    email_verified_at: datetime | None
    created_at: datetime
    # Incremented by every password change: a login's check is only good for the version it read.
    credentials_version: int
    disabled_at: datetime | None = None

    @property
    def verified(self) -> bool:
        return self.email_verified_at is not None


_USER_COLUMNS = (
    "id, org_id, email, name, role, password_hash, email_verified_at, created_at,"
    " credentials_version, disabled_at"
)
_USER_BY_EMAIL = f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = :email"
_USER_BY_ID = f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"


async def user_by_email(db: AsyncSession, email: str) -> UserRecord | None:
    """The user of a normalized address, in any org."""
    return await one_or_none(db, UserRecord, text(_USER_BY_EMAIL), {"email": email})


async def email_taken(db: AsyncSession, email: str) -> bool:
    """Whether any org has a user with this normalized address."""
    return await exists(db, text("SELECT 1 FROM users WHERE lower(email) = :email"), {"email": email})


async def user_by_id(db: AsyncSession, user_id: UUID) -> UserRecord | None:
    """One user of the bound org."""
    return await one_or_none(db, UserRecord, text(_USER_BY_ID), {"id": user_id})


async def lock_if_enabled(db: AsyncSession, user_id: UUID) -> bool:
    """Share-lock the user row and say whether the user may hold a session (False when absent).

    The lock conflicts with an operator's `disable`, which revokes sessions in its own
    transaction: a session is either created first (and then revoked) or refused.
    """
    enabled = (
        await db.execute(
            text("SELECT disabled_at IS NULL FROM users WHERE id = :id FOR SHARE"), {"id": user_id}
        )
    ).scalar_one_or_none()
    return bool(enabled)


async def enabled_role(db: AsyncSession, user_id: UUID) -> Role | None:
    """The role of a user who is not disabled; None when absent (removed) or disabled."""
    role = (
        await db.execute(
            text("SELECT role FROM users WHERE id = :id AND disabled_at IS NULL"), {"id": user_id}
        )
    ).scalar_one_or_none()
    return None if role is None else Role(role)


async def org_name(db: AsyncSession, org_id: UUID) -> str | None:
    """The name of the bound org."""
    name = (
        await db.execute(text("SELECT name FROM organizations WHERE id = :id"), {"id": org_id})
    ).scalar_one_or_none()
    return None if name is None else str(name)
