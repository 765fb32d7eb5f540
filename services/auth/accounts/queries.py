"""SQL of a user's credentials: password hash, credentials version, verified address.

Every statement runs in a transaction bound to the user's org, except `audit_alone`, which binds
its own.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth.audit import UserEvent
from shared.db import execute_alone
from shared.queries import TENANT_PARAM, TENANT_SETTING


async def mark_email_verified(db: AsyncSession, user_id: UUID) -> None:
    """Record that the user proved their address now."""
    await db.execute(
        text("UPDATE users SET email_verified_at = now(), updated_at = now() WHERE id = :id"),
        {"id": user_id},
    )


async def lock_credentials_version(db: AsyncSession, user_id: UUID) -> int | None:
    """Lock the user row against concurrent password changes and read its credentials version."""
    version = (
        await db.execute(
            text("SELECT credentials_version FROM users WHERE id = :id FOR NO KEY UPDATE"),
            {"id": user_id},
        )
    ).scalar_one_or_none()
    return None if version is None else int(version)


async def rehash_password(db: AsyncSession, user_id: UUID, password_hash: str) -> None:
    """Store a new hash of the same password (stronger parameters): the version stays."""
    await db.execute(
        text("UPDATE users SET password_hash = :hash, updated_at = now() WHERE id = :id"),
        {"hash": password_hash, "id": user_id},
    )


async def set_password(db: AsyncSession, user_id: UUID, password_hash: str | None) -> None:
    """Replace (or, with None, drop) the password; bumps the credentials version."""
    await db.execute(
        text(
            "UPDATE users SET password_hash = :hash, credentials_version ="
            " credentials_version + 1, updated_at = now() WHERE id = :id"
        ),
        {"hash": password_hash, "id": user_id},
    )


# One audit event as ONE statement in an implicit transaction of its own (no BEGIN, no COMMIT):
# the row to insert is made from the binding row (OFFSET 0: not flattened), so the tenant is
# bound before the row exists and Row Level Security checks it (WITH CHECK) against that org.
_AUDIT_ALONE = text(
    "INSERT INTO audit_log (org_id, actor_user_id, action, target_type, target_id, details,"
    " request_id, ip_address)"
    " SELECT CAST(bind.tenant AS uuid), :actor, :action, :ttype, :tid, CAST(:details AS jsonb),"
    " :rid, CAST(:ip AS inet)"
    f" FROM (SELECT set_config('{TENANT_SETTING}', :{TENANT_PARAM}, true) AS tenant OFFSET 0) AS bind"
)


async def audit_alone(
    sessionmaker: async_sessionmaker[AsyncSession],
    org_id: UUID,
    user_id: UUID,
    event: UserEvent,
    *,
    ip: str | None,
    request_id: str | None,
) -> None:
    """Record `event` by `user_id` in `org_id` outside any transaction: one round trip."""
    await execute_alone(
        sessionmaker,
        _AUDIT_ALONE,
        {
            TENANT_PARAM: str(org_id),
            "actor": user_id,
            "action": event.action,
            "ttype": event.target_type,
            "tid": event.target_id,
            "details": event.details_json,
            "rid": request_id,
            "ip": ip,
        },
    )
