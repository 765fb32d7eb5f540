"""HTTP of accepting an invitation. Rules in `invitations/service.py`."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.auth.invitations import service
from services.auth.limits import ip_limit
from services.auth.prefix import AUTH_PREFIX
from services.auth.responses import session_response
from services.auth.schemas import AcceptInvitationRequest, TokenResponse
from services.auth.state import AuthDep, Client

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.post(
    "/invitations/accept",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenResponse,
    dependencies=[ip_limit("invitation_accept")],
)
async def accept_invitation(
    body: AcceptInvitationRequest, state: AuthDep, client: Client, response: Response
) -> TokenResponse:
    issued = await service.accept_invitation(
        state, token=body.token, name=body.name, password=body.password, client=client
    )
    return session_response(state, response, issued)
