"""HTTP of members: /users. The rules are in `members/service.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from services.api.deps import ApiDep, Caller, CurrentUser, TenantSession
from services.api.members import service
from services.api.members.schemas import UserPatch, user_out
from services.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.api.prefix import API_PREFIX
from services.api.principal import Principal
from services.api.stepup import RecentUser, StepUpCheck
from shared.jsonresponse import model_response
from shared.user_schema import User

router = APIRouter(prefix=API_PREFIX, tags=["users"])


@dataclass(frozen=True)
class Patch:
    """A member patch its caller may send: a role change came with a recent authentication."""

    me: Principal
    body: UserPatch


async def authorize_patch(body: UserPatch, me: CurrentUser, step_up: StepUpCheck) -> Patch:
    # A role change grants or withdraws rights (like an API key): it needs a recent
    # authentication; a rename does not.
    if body.role is not None:
        step_up.require()
    return Patch(me, body)


AuthorizedPatch = Annotated[Patch, Depends(authorize_patch)]


@router.get(
    "/users",
    response_model=Page[User],
    summary="Members of the organization, oldest first (also with an API key)",
)
async def list_users(
    me: Caller, session: TenantSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Response:
    rows, next_cursor = await service.list_members(session, limit=limit, cursor=cursor)
    return model_response(Page[User](items=[user_out(r) for r in rows], next_cursor=next_cursor))


@router.get("/users/{user_id}", response_model=User, summary="One member (also with an API key)")
async def get_user(user_id: UUID, me: Caller, session: TenantSession) -> Response:
    return model_response(user_out(await service.get_member(session, user_id)))


@router.patch(
    "/users/{user_id}",
    summary="Change a member's name (self) or role (owner/admin; a role change: recent authentication)",
)
async def patch_user(user_id: UUID, patch: AuthorizedPatch, session: TenantSession) -> User:
    body = patch.body
    row = await service.change_member(session, patch.me, user_id, name=body.name, role=body.role)
    return user_out(row)


@router.delete(
    "/users/{user_id}", status_code=204, summary="Remove a member (owner/admin; recent authentication)"
)
async def delete_user(user_id: UUID, me: RecentUser, session: TenantSession, state: ApiDep) -> Response:
    await service.remove_member(session, me, user_id, redis=state.redis, settings=state.settings)
    return Response(status_code=204)
