"""SQL of the audit log (read side)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.audit_log.schemas import AuditEventOut
from shared.rows import all_of


async def list_events(session: AsyncSession, *, limit: int, before: int | None) -> list[AuditEventOut]:
    """Events newest first, with ids below `before` when given (rows are already the public shape).

    The public id is text, so ORDER BY and the cursor name the table's column (`audit_log.id`):
    a bare `id` would resolve to the text output column and sort `10` before `9`."""
    params: dict[str, object] = {"limit": limit}
    where = ""
    if before is not None:
        params["before"] = before
        where = "WHERE audit_log.id < :before"
    statement = text(
        "SELECT audit_log.id::text AS id, actor_user_id, action, target_type, target_id, details,"
        " request_id, host(ip_address) AS ip_address, created_at"
        f" FROM audit_log {where} ORDER BY audit_log.id DESC LIMIT :limit"
    )
    return await all_of(session, AuditEventOut, statement, params)
