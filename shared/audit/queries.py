"""SQL of the audit log's write side: one INSERT (the table is append-only for every role)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_event(
    session: AsyncSession,
    *,
    org_id: UUID,
    actor_user_id: UUID | None,
    action: str,
    target_type: str | None,
    target_id: str | None,
    details_json: str,
    request_id: str | None,
    ip: str | None,
) -> None:
    await session.execute(
        text(
            "INSERT INTO audit_log (org_id, actor_user_id, action, target_type, target_id,"
            " details, request_id, ip_address)"
            " VALUES (:org, :actor, :action, :ttype, :tid, CAST(:details AS jsonb), :rid,"
            " CAST(:ip AS inet))"
        ),
        {
            "org": org_id,
            "actor": actor_user_id,
            "action": action,
            "ttype": target_type,
            "tid": target_id,
            "details": details_json,
            "rid": request_id,
            "ip": ip,
        },
    )
