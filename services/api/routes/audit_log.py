"""GET /audit-log: the org's events, newest first (owner/admin)."""

# SQL here is assembled from this module's constant fragments only; values are bound parameters.
# ruff: noqa: S608

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from services.api.deps import CurrentUser, TenantSession
from services.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_int_cursor,
    encode_cursor,
    split_page,
)
from services.api.routes import API_PREFIX
from services.api.schemas import AuditEventOut

router = APIRouter(prefix=API_PREFIX, tags=["audit"])


@router.get("/audit-log", summary="Audit events of the organization, newest first (owner/admin)")
async def list_audit_log(
    me: CurrentUser, session: TenantSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[AuditEventOut]:
    me.require_manager()
    params: dict[str, object] = {"limit": limit + 1}
    where = ""
    if cursor is not None:
        params["before"] = decode_int_cursor(cursor)
        where = "WHERE id < :before"
    rows = (
        await session.execute(
            text(
                "SELECT id, actor_user_id, action, target_type, target_id, details, request_id,"
                f" host(ip_address) AS ip_address, created_at FROM audit_log {where}"
                " ORDER BY id DESC LIMIT :limit"
            ),
            params,
        )
    ).all()
    page, more = split_page(rows, limit)
    items = [
        AuditEventOut(
            id=str(r.id), actor_user_id=r.actor_user_id, action=r.action, target_type=r.target_type,
            target_id=r.target_id, details=r.details, request_id=r.request_id,
            ip_address=r.ip_address, created_at=r.created_at,
        )
        for r in page
    ]
    return Page[AuditEventOut](items=items, next_cursor=encode_cursor(page[-1].id) if more else None)
