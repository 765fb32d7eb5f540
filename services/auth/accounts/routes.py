"""HTTP of accounts: password login, magic links, password reset. Rules in `accounts/service.py`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from services.auth.accounts import service
from services.auth.deps import Mailer
from services.auth.factors.stepup import RecentClaims
from services.auth.limits import enforce, ip_limit
from services.auth.prefix import AUTH_PREFIX
from services.auth.responses import ACCEPTED, clear_refresh_cookie, session_response
from services.auth.schemas import (
    EmailRequest,
    LoginRequest,
    PasswordChangeRequest,
    PasswordResetRequest,
    StatusResponse,
    TokenRequest,
    TokenResponse,
)
from services.auth.state import AuthDep, Client

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.post("/login", response_model=TokenResponse)
async def login(
    body: LoginRequest, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    await enforce(state, request, "login", client, body.email)
    issued = await service.login(state, email=body.email, password=body.password, client=client)
    return session_response(state, response, issued)


@router.post("/magic-link", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def magic_link(body: EmailRequest, mailer: Mailer) -> StatusResponse:
    await mailer.after_response("magic_link", body.email, service.request_magic_link)
    return ACCEPTED


@router.post("/magic-link/verify", response_model=TokenResponse, dependencies=[ip_limit("magic_link_verify")])
async def magic_link_verify(
    body: TokenRequest, state: AuthDep, client: Client, response: Response
) -> TokenResponse:
    issued = await service.verify_magic_link(state, token=body.token, client=client)
    return session_response(state, response, issued)


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def password_forgot(body: EmailRequest, mailer: Mailer) -> StatusResponse:
    await mailer.after_response("password_forgot", body.email, service.request_password_reset)
    return ACCEPTED


@router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[ip_limit("password_reset")],
)
async def password_reset(body: PasswordResetRequest, state: AuthDep, client: Client) -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    await service.reset_password(state, token=body.token, password=body.password, client=client)
    clear_refresh_cookie(response, state)
    return response


@router.post("/password/change", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def password_change(
    body: PasswordChangeRequest, state: AuthDep, claims: RecentClaims, client: Client, request: Request
) -> Response:
    """Change the password with the current one (recent authentication). Every other session
    ends (this one stays signed in); the user is told by mail. A wrong current password is a 422
    naming `current_password`."""
    # Guessing the current password from a stolen session is bounded like guessing at login:
    # per network, and per account (the user id stands for the address).
    await enforce(state, request, "password_change", client, str(claims.user_id))
    await service.change_password(
        state, claims, current=body.current_password, new=body.new_password, client=client
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
