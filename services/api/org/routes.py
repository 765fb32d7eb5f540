"""HTTP of the organization: GET and PATCH /org. The rules are in `org/service.py`."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import CurrentUser, TenantSession
from services.api.org import service
from services.api.org.schemas import OrgOut, OrgPatch, principal_org
from services.api.prefix import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["me"])


@router.get("/org", summary="The current organization")
async def get_org(me: CurrentUser) -> OrgOut:
    return principal_org(me)


@router.patch("/org", summary="Rename the organization (owner or admin)")
async def patch_org(body: OrgPatch, me: CurrentUser, session: TenantSession) -> OrgOut:
    row = await service.rename(session, me, body.name)
    if row is None:
        return principal_org(me)
    return OrgOut(id=row.id, name=row.name, created_at=row.created_at, updated_at=row.updated_at)
