"""HTTP of GET /me."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import Caller, TenantSession
from services.api.me.schemas import KeyMeOut, MeOut, key_me_out, me_out
from services.api.org import queries as org_queries
from services.api.prefix import API_PREFIX
from services.api.principal import Principal

router = APIRouter(prefix=API_PREFIX, tags=["me"])


@router.get("/me", summary="Who is calling: the user, or the API key, and the organization")
async def get_me(me: Caller, session: TenantSession) -> MeOut | KeyMeOut:
    if isinstance(me, Principal):
        return me_out(me)
    return key_me_out(me, await org_queries.current(session, me.org_id))
