"""HTTP of GET /me."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import Caller
from services.api.me.schemas import KeyMeOut, MeOut, key_me_out, me_out
from services.api.prefix import API_PREFIX
from services.api.principal import Principal

router = APIRouter(prefix=API_PREFIX, tags=["me"])


@router.get("/me", summary="Who is calling: the user, or the API key, and the organization")
async def get_me(me: Caller) -> MeOut | KeyMeOut:
    # No TenantSession: the one statement that verified the caller (a person's row, or a key's)
    # also read their org.
    if isinstance(me, Principal):
        return me_out(me)
    return key_me_out(me)
