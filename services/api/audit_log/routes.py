"""HTTP of GET /audit-log. The rules are in `audit_log/service.py`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.api.audit_log import service
from services.api.audit_log.schemas import AuditEventOut
from services.api.deps import CurrentUser, TenantSession
from services.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.api.prefix import API_PREFIX
from shared.jsonresponse import model_response

router = APIRouter(prefix=API_PREFIX, tags=["audit"])


@router.get(
    "/audit-log",
    response_model=Page[AuditEventOut],
    summary="Audit events of the organization, newest first (owner/admin)",
)
async def list_audit_log(
    me: CurrentUser, session: TenantSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Response:
    rows, next_cursor = await service.list_events(session, me, limit=limit, cursor=cursor)
    # Serialized once, by pydantic: the rows were validated when they were read.
    return model_response(Page[AuditEventOut](items=list(rows), next_cursor=next_cursor))
