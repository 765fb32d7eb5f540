"""HTTP of the organization: GET and PATCH /org. The rules are in `org/service.py`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.api.deps import Caller, Manager, TenantSession
from services.api.org import service
from services.api.org.schemas import OrgOut, OrgPatch, key_org, org_out, principal_org
from services.api.prefix import API_PREFIX
from services.api.principal import Principal
from shared.jsonresponse import model_response

router = APIRouter(prefix=API_PREFIX, tags=["org"])


@router.get("/org", response_model=OrgOut, summary="The current organization (also with an API key)")
async def get_org(me: Caller) -> Response:
    # As GET /me: the org was read by the statement that verified the caller.
    return model_response(principal_org(me) if isinstance(me, Principal) else key_org(me))


@router.patch("/org", summary="Rename the organization (owner or admin)")
async def patch_org(body: OrgPatch, me: Manager, session: TenantSession) -> OrgOut:
    row = await service.rename(session, me, body.name)
    if row is None:
        return principal_org(me)
    return org_out(row)
