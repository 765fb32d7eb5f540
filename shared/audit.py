"""The one way to write an audit event (append-only `audit_log`, tenant-scoped), for every service."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import request_id_var


async def record(
    session: AsyncSession,
    *,
    org_id: UUID,
    action: str,
    actor_user_id: UUID | None = None,
    target_type: str | None = None,
    target_id: UUID | str | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Insert one event; the transaction must already be bound to `org_id` (set_tenant)."""
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
            "tid": None if target_id is None else str(target_id),
            "details": orjson.dumps(details or {}).decode(),
            "rid": request_id_var.get(),
            "ip": ip,
        },
    )
