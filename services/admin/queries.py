"""SQL of the admin command line; it connects as the administrator, which bypasses RLS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import all_of, exists, ids_of, one_or_none


@dataclass(frozen=True)
class OrgRow:
    id: UUID
    name: str
    created_at: datetime
    users: int


@dataclass(frozen=True)
class UserRow:
    id: UUID
    org_id: UUID
    org_name: str
    email: str
    name: str
    role: str
    email_verified_at: datetime | None
    disabled_at: datetime | None
    created_at: datetime
    live_sessions: int


_ORG_SELECT = (
    "SELECT o.id, o.name, o.created_at,"
    " (SELECT count(*) FROM users u WHERE u.org_id = o.id) AS users FROM organizations o"
)
_USER_SELECT = (
    "SELECT u.id, u.org_id, o.name AS org_name, u.email, u.name, u.role, u.email_verified_at,"
    " u.disabled_at, u.created_at,"
    " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL"
    "   AND s.expires_at > now()) AS live_sessions"
    " FROM users u JOIN organizations o ON o.id = u.org_id"
)


async def bypasses_rls(db: AsyncSession) -> bool:
    """True when the connected role sees every tenant (superuser or BYPASSRLS)."""
    return bool(
        (
            await db.execute(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).scalar_one_or_none()
    )


async def list_orgs(db: AsyncSession) -> list[OrgRow]:
    """Every organization with its member count, oldest first."""
    return await all_of(db, OrgRow, text(_ORG_SELECT + " ORDER BY o.created_at, o.id"), {})


async def find_org(db: AsyncSession, org_id: UUID) -> OrgRow | None:
    """One organization with its member count."""
    return await one_or_none(db, OrgRow, text(_ORG_SELECT + " WHERE o.id = :id"), {"id": org_id})


async def list_users(db: AsyncSession, org_id: UUID | None) -> list[UserRow]:
    """Every user (of one org, when given), by org then age."""
    statement = text(
        _USER_SELECT + " WHERE CAST(:org AS uuid) IS NULL OR u.org_id = CAST(:org AS uuid)"
        " ORDER BY o.created_at, u.org_id, u.created_at, u.id"
    )
    return await all_of(db, UserRow, statement, {"org": org_id})


async def find_user(db: AsyncSession, *, user_id: UUID | None, email: str | None) -> UserRow | None:
    """One user by id or by email (case-insensitive)."""
    statement = text(_USER_SELECT + " WHERE u.id = :id OR lower(u.email) = lower(:email)")
    return await one_or_none(db, UserRow, statement, {"id": user_id, "email": email})


async def lock_user(db: AsyncSession, user_id: UUID) -> None:
    """Lock the user row: conflicts with the share lock the auth service takes to start a session."""
    await db.execute(text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": user_id})


async def insert_org_with_owner(
    db: AsyncSession,
    *,
    org_id: UUID,
    org_name: str,
    user_id: UUID,
    email: str,
    name: str,
    password_hash: str,
) -> None:
    """Create the org and its verified owner; a taken email raises IntegrityError."""
    await db.execute(
        text("INSERT INTO organizations (id, name) VALUES (:id, :name)"),
        {"id": org_id, "name": org_name},
    )
    await db.execute(
        text(
            "INSERT INTO users (id, org_id, email, name, role, password_hash, email_verified_at)"
            " VALUES (:id, :org, :email, :name, 'owner', :hash, now())"
        ),
        {"id": user_id, "org": org_id, "email": email, "name": name, "hash": password_hash},
    )


async def pending_signup_count(db: AsyncSession, email: str) -> int:
    """How many live sign-up attempts the address has (it has no account yet)."""
    statement = text(
        "SELECT count(*) FROM signup_attempts WHERE email = lower(:email) AND expires_at > now()"
    )
    return int((await db.execute(statement, {"email": email})).scalar_one())


async def drop_signups(db: AsyncSession, email: str) -> None:
    await db.execute(text("DELETE FROM signup_attempts WHERE email = lower(:email)"), {"email": email})


async def mark_email_verified(db: AsyncSession, user_id: UUID) -> bool:
    """Set `email_verified_at` and spend the pending verification links; False if already set."""
    verify = text(
        "UPDATE users SET email_verified_at = now(), updated_at = now()"
        " WHERE id = :id AND email_verified_at IS NULL RETURNING id"
    )
    changed = await exists(db, verify, {"id": user_id})
    await db.execute(
        text(
            "UPDATE one_time_tokens SET consumed_at = now() WHERE user_id = :id"
            " AND purpose = 'email_verification' AND consumed_at IS NULL"
        ),
        {"id": user_id},
    )
    return changed


async def set_disabled(db: AsyncSession, user_id: UUID, *, disabled: bool) -> bool:
    """Disable (now) or re-enable a user; False when it already was in that state."""
    statement = text(
        "UPDATE users SET disabled_at = CASE WHEN :disabled THEN now() END, updated_at = now()"
        " WHERE id = :id AND (disabled_at IS NOT NULL) <> :disabled RETURNING id"
    )
    return await exists(db, statement, {"id": user_id, "disabled": disabled})


async def revoke_sessions(db: AsyncSession, user_id: UUID, *, reason: str) -> list[UUID]:
    """Revoke every not yet revoked session of the user; their ids (for the Redis markers)."""
    statement = text(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = :reason"
        " WHERE user_id = :id AND revoked_at IS NULL RETURNING id"
    )
    return await ids_of(db, statement, {"id": user_id, "reason": reason})


async def public_table_count(db: AsyncSession) -> int:
    """Tables in the `public` schema: a restore target must have none."""
    count = (
        await db.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    ).scalar_one()
    return int(count)


async def recently_revoked_sessions(db: AsyncSession, seconds: int) -> list[UUID]:
    """Sessions revoked in the last `seconds` (their access tokens may still be unexpired)."""
    statement = text("SELECT id FROM sessions WHERE revoked_at > now() - make_interval(secs => :s)")
    return await ids_of(db, statement, {"s": seconds})
