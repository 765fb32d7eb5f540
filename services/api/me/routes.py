"""HTTP of GET /me."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import Caller, Tenant
from services.api.me.schemas import KeyMeOut, MeOut, key_me_out, me_out
from services.api.org import queries as org_queries
from services.api.prefix import API_PREFIX
from services.api.principal import Principal

router = APIRouter(prefix=API_PREFIX, tags=["me"])


@router.get("/me", summary="Who is calling: the user, or the API key, and the organization")
async def get_me(me: Caller, tenant: Tenant) -> MeOut | KeyMeOut:
    # No TenantSession: a person's /me is the one statement that read them. A key's request
    # already runs in the transaction that verified it.
    if isinstance(me, Principal):
        return me_out(me)
    return key_me_out(me, await org_queries.current(await tenant.transaction(), me.org_id))
