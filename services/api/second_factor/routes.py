"""HTTP of the org's second-factor policy. The rules are in `second_factor/service.py`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from services.api.deps import CurrentUser, TenantSession
from services.api.prefix import API_PREFIX
from services.api.second_factor import service
from services.api.stepup import RecentUser

router = APIRouter(prefix=API_PREFIX, tags=["org"])


class SecondFactorPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    required: bool


@router.get("/org/second-factor-policy", summary="Whether every member must sign in with a second factor")
async def get_policy(me: CurrentUser) -> SecondFactorPolicy:
    return SecondFactorPolicy(required=me.org_requires_second_factor)


@router.put(
    "/org/second-factor-policy",
    summary="Require a second factor of every member, or stop requiring it (owner; recent authentication)",
)
async def put_policy(body: SecondFactorPolicy, me: RecentUser, session: TenantSession) -> SecondFactorPolicy:
    return SecondFactorPolicy(required=await service.set_policy(session, me, body.required))
