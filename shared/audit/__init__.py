"""The one way to write an audit event (append-only `audit_log`, tenant-scoped), for every service."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from shared.audit import queries
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
    await queries.insert_event(
        session,
        org_id=org_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details_json=orjson.dumps(details or {}).decode(),
        request_id=request_id_var.get(),
        ip=ip,
    )
