"""HTTP of invitations: /invitations. The rules are in `invitations/service.py`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.api.deps import ApiDep, CurrentUser, Manager, TenantSession
from services.api.invitations import service
from services.api.invitations.queries import InvitationRow
from services.api.invitations.schemas import InvitationIn, InvitationOut
from services.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.api.prefix import API_PREFIX
from services.api.stepup import RecentManager

router = APIRouter(prefix=API_PREFIX, tags=["invitations"])


def invitation_out(row: InvitationRow) -> InvitationOut:
    return InvitationOut(
        id=row.id,
        email=row.email,
        role=row.role,
        status=service.status(row),
        invited_by=row.invited_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        accepted_at=row.accepted_at,
        revoked_at=row.revoked_at,
    )


@router.post(
    "/invitations", status_code=201, summary="Invite someone by email (owner/admin; recent authentication)"
)
async def create_invitation(
    body: InvitationIn, me: RecentManager, session: TenantSession, state: ApiDep
) -> InvitationOut:
    # Whatever the role, an accepted invitation is a lasting way into the org's data (it outlives
    # this token and any session revocation), as an API key is: always a recent authentication.
    row = await service.invite(
        session,
        me,
        email=str(body.email),
        role=body.role,
        redis=state.redis,
        settings=state.settings,
        limiter=state.limiter,
    )
    return invitation_out(row)


@router.get("/invitations", summary="The organization's invitations, newest first (owner/admin)")
async def list_invitations(
    me: Manager, session: TenantSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[InvitationOut]:
    rows, next_cursor = await service.list_invitations(session, me, limit=limit, cursor=cursor)
    return Page[InvitationOut](items=[invitation_out(r) for r in rows], next_cursor=next_cursor)


@router.delete("/invitations/{invitation_id}", status_code=204, summary="Revoke an invitation")
async def revoke_invitation(invitation_id: UUID, me: CurrentUser, session: TenantSession) -> Response:
    await service.revoke(session, me, invitation_id)
    return Response(status_code=204)
