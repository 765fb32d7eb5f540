"""HTTP of accepting an invitation. Rules in `invitations/service.py`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from services.auth.deps import AuthDep, Client
from services.auth.invitations import service
from services.auth.limits import enforce_ip
from services.auth.prefix import AUTH_PREFIX
from services.auth.responses import session_response
from services.auth.schemas import AcceptInvitationRequest, TokenResponse

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.post("/invitations/accept", status_code=status.HTTP_201_CREATED, response_model=TokenResponse)
async def accept_invitation(
    body: AcceptInvitationRequest, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    await enforce_ip(state, request, "invitation_accept", client, state.settings.ratelimit_auth_ip_per_minute)
    issued = await service.accept_invitation(
        state, token=body.token, name=body.name, password=body.password, client=client
    )
    return session_response(state, response, issued)
