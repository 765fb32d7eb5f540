"""HTTP of GET /me."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import CurrentUser
from services.api.me.schemas import MeOut, me_out
from services.api.prefix import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["me"])


@router.get("/me", summary="The current user and organization")
async def get_me(me: CurrentUser) -> MeOut:
    return me_out(me)
