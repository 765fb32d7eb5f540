"""SQL of users and organizations, as every login path reads them.

`user_by_email` (and `user_by_email_alone`, the same read outside any transaction) is a
cross-tenant read (the auth_identity_lookup policy); `bind_and_lock_credentials` binds the
transaction to the user's org itself; the others run in a transaction bound to the user's org.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import execute_alone, tenant_bound
from shared.queries import TENANT_PARAM, Statement
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


_USER_BY_EMAIL_ALONE = Statement(_USER_BY_EMAIL)


async def user_by_email(db: AsyncSession, email: str) -> UserRecord | None:
    """The user of a normalized address, in any org."""
    return await one_or_none(db, UserRecord, text(_USER_BY_EMAIL), {"email": email})


async def user_by_email_alone(
    sessionmaker: async_sessionmaker[AsyncSession], email: str
) -> UserRecord | None:
    """`user_by_email` as one statement in an implicit transaction of its own (no BEGIN, no COMMIT)."""
    rows = await execute_alone(sessionmaker, _USER_BY_EMAIL_ALONE.clause, {"email": email})
    return UserRecord(**rows[0]) if rows else None


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


class LockedUser(BaseModel):
    """A user row locked for opening a session, with everything a session's opening decides on:
    the org (its name, its second-factor rule) and the user's second factors."""

    model_config = ConfigDict(frozen=True)

    user: UserRecord
    org_name: str | None  # None: the org row is not visible
    org_requires_second_factor: bool
    totp: bool
    passkeys: int
    recovery_codes: int  # unused ones

    @property
    def enabled(self) -> bool:
        return self.user.disabled_at is None


# One read of the user row under `lock`, its org and its second factors (the row of `enrolled`
# and `org_requires_second_factor` in services/auth/factors/queries.py).
_LOCKED_USER = (
    "SELECT u.id, u.org_id, u.email, u.name, u.role, u.password_hash, u.email_verified_at,"
    " u.created_at, u.credentials_version, u.disabled_at, o.name AS org_name,"
    " coalesce(o.require_second_factor, false) AS org_requires_second_factor,"
    " EXISTS (SELECT 1 FROM totp_factors t WHERE t.user_id = u.id AND t.enabled_at IS NOT NULL)"
    " AS totp,"
    " (SELECT count(*) FROM webauthn_credentials w WHERE w.user_id = u.id) AS passkeys,"
    " (SELECT count(*) FROM recovery_codes r WHERE r.user_id = u.id AND r.used_at IS NULL)"
    " AS recovery_codes"
    " FROM users u LEFT JOIN organizations o ON o.id = u.org_id WHERE u.id = :id"
)
# Share lock: it conflicts with an operator's `disable` (an UPDATE of the row), which revokes
# sessions in its own transaction: a session is either created first (and then revoked) or refused.
_LOCK_SHARED = text(_LOCKED_USER + " FOR SHARE OF u")
# Binds the tenant first, then locks against concurrent password changes too (a reset or change
# bumps the credentials version under this lock): a password login's first statement.
_LOCK_CREDENTIALS = tenant_bound(_LOCKED_USER + " FOR NO KEY UPDATE OF u")
_USER_FIELDS = frozenset(UserRecord.model_fields)


def _locked(row: dict[str, object] | None) -> LockedUser | None:
    if row is None:
        return None
    user = UserRecord(**{k: v for k, v in row.items() if k in _USER_FIELDS})
    rest = {k: v for k, v in row.items() if k not in _USER_FIELDS}
    return LockedUser(user=user, **rest)


async def lock_for_session(db: AsyncSession, user_id: UUID) -> LockedUser | None:
    """Share-lock the user row (transaction bound to its org); None when absent."""
    row = (await db.execute(_LOCK_SHARED, {"id": user_id})).mappings().one_or_none()
    return _locked(None if row is None else dict(row))


async def bind_and_lock_credentials(db: AsyncSession, org_id: UUID, user_id: UUID) -> LockedUser | None:
    """Bind the transaction to `org_id` and lock the user row against concurrent password
    changes and disabling, in one statement (the transaction's first); None when absent."""
    row = (
        (await db.execute(_LOCK_CREDENTIALS.clause, {TENANT_PARAM: str(org_id), "id": user_id}))
        .mappings()
        .one_or_none()
    )
    return _locked(None if row is None else dict(row))


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
