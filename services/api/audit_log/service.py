"""Audit log rules: only an owner or an admin reads it; pages are keyed by event id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.audit_log import queries
from services.api.audit_log.schemas import AuditEventOut
from services.api.pagination import decode_int_cursor, encode_cursor, split_page
from services.api.principal import Principal


async def list_events(
    session: AsyncSession, me: Principal, *, limit: int, cursor: str | None
) -> tuple[Sequence[AuditEventOut], str | None]:
    """One page of events, newest first, and the next page's cursor."""
    me.require_manager()
    before = None if cursor is None else decode_int_cursor(cursor)
    page, more = split_page(await queries.list_events(session, limit=limit + 1, before=before), limit)
    return page, encode_cursor(page[-1].id) if more else None  # the id, as decimal text
