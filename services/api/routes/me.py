"""GET /me, GET /org, PATCH /org."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from services.api import audit
from services.api.deps import CurrentUser, TenantSession
from services.api.routes import API_PREFIX
from services.api.routes.common import lock_org, principal_org, principal_user
from services.api.schemas import MeOut, OrgOut, OrgPatch

router = APIRouter(prefix=API_PREFIX, tags=["me"])


@router.get("/me", summary="The current user and organization")
async def get_me(me: CurrentUser) -> MeOut:
    return MeOut(user=principal_user(me), org=principal_org(me))


@router.get("/org", summary="The current organization")
async def get_org(me: CurrentUser) -> OrgOut:
    return principal_org(me)


@router.patch("/org", summary="Rename the organization (owner or admin)")
async def patch_org(
    body: OrgPatch, me: CurrentUser, session: TenantSession, request: Request
) -> OrgOut:
    me.require_manager()
    me = await lock_org(session, me)  # the role as of now, not as of the request's first read
    me.require_manager()
    if body.name == me.org_name:
        return principal_org(me)
    row = (
        await session.execute(
            text(
                "UPDATE organizations SET name = :name, updated_at = now() WHERE id = :org"
                " RETURNING id, name, created_at, updated_at"
            ),
            {"name": body.name, "org": me.org_id},
        )
    ).one()
    await audit.record(
        session, request, me, "org.updated", target_type="organization", target_id=me.org_id,
        details={"changes": {"name": {"from": me.org_name, "to": body.name}}},
    )
    return OrgOut(id=row.id, name=row.name, created_at=row.created_at, updated_at=row.updated_at)
