"""HTTP of GET /me."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.api.deps import Caller
from services.api.me.schemas import KeyMeOut, MeOut, key_me_out, me_out
from services.api.prefix import API_PREFIX
from services.api.principal import Principal
from shared.jsonresponse import model_response

router = APIRouter(prefix=API_PREFIX, tags=["me"])


@router.get(
    "/me",
    response_model=MeOut | KeyMeOut,
    summary="Who is calling: the user, or the API key, and the organization",
)
async def get_me(me: Caller) -> Response:
    # No TenantSession: the one statement that verified the caller (a person's row, or a key's)
    # also read their org.
    return model_response(me_out(me) if isinstance(me, Principal) else key_me_out(me))
