"""HTTP of the organization: GET and PATCH /org. The rules are in `org/service.py`."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import Caller, CurrentUser, Tenant, TenantSession
from services.api.org import queries, service
from services.api.org.schemas import OrgOut, OrgPatch, org_out, principal_org
from services.api.prefix import API_PREFIX
from services.api.principal import Principal

router = APIRouter(prefix=API_PREFIX, tags=["org"])


@router.get("/org", summary="The current organization (also with an API key)")
async def get_org(me: Caller, tenant: Tenant) -> OrgOut:
    # As GET /me: one statement for a person, the verifying transaction for a key.
    if isinstance(me, Principal):
        return principal_org(me)
    return org_out(await queries.current(await tenant.transaction(), me.org_id))


@router.patch("/org", summary="Rename the organization (owner or admin)")
async def patch_org(body: OrgPatch, me: CurrentUser, session: TenantSession) -> OrgOut:
    row = await service.rename(session, me, body.name)
    if row is None:
        return principal_org(me)
    return org_out(row)
