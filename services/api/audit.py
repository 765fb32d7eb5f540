"""Audit events written by the api (append-only `audit_log`, in the request's transaction)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import Principal, request_ip
from shared.context import request_id_var


async def record(
    session: AsyncSession,
    request: Request,
    actor: Principal,
    action: str,
    *,
    target_type: str,
    target_id: UUID | str,
    details: dict[str, Any] | None = None,
) -> None:
    """Insert one event for the actor's org; details must never hold a secret."""
    await session.execute(
        text(
            "INSERT INTO audit_log (org_id, actor_user_id, action, target_type, target_id,"
            " details, request_id, ip_address)"
            " VALUES (:org, :actor, :action, :ttype, :tid, CAST(:details AS jsonb), :rid,"
            " CAST(:ip AS inet))"
        ),
        {
            "org": actor.org_id,
            "actor": actor.user_id,
            "action": action,
            "ttype": target_type,
            "tid": str(target_id),
            "details": orjson.dumps(details or {}).decode(),
            "rid": request_id_var.get(),
            "ip": request_ip(request),
        },
    )
