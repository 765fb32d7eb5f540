"""HTTP of sign-up: register, verify the address, ask for a new link. Rules in `signups/service.py`."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Response, status

from services.auth.deps import Mailer
from services.auth.limits import ip_limit
from services.auth.prefix import AUTH_PREFIX
from services.auth.responses import ACCEPTED, session_response
from services.auth.schemas import (
    EmailRequest,
    RegisterRequest,
    StatusResponse,
    TokenResponse,
    VerifyEmailRequest,
)
from services.auth.signups import service
from services.auth.state import AuthDep, Client

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.post("/register", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def register(body: RegisterRequest, client: Client, mailer: Mailer) -> StatusResponse:
    """Sign up: the same answer, in the same time, whether or not the address has an account."""
    # The hash runs after the 202, so its place in the hashing backlog is taken now: a full
    # backlog is a 503 for every address alike, and the backlog never outlives the load.
    ticket = service.admit(mailer.state)
    attempt = partial(
        service.register,
        password=body.password,
        name=body.name,
        org_name=body.org_name,
        client=client,
        ticket=ticket,
    )
    try:
        await mailer.after_response("register", body.email, attempt)
    except BaseException:
        ticket.release()
        raise
    return StatusResponse(status="verification_sent")


@router.post("/email/verify", response_model=TokenResponse, dependencies=[ip_limit("email_verify")])
async def verify_email(
    body: VerifyEmailRequest, state: AuthDep, client: Client, response: Response
) -> TokenResponse:
    """Activate the sign-up attempt of this link, with the password chosen in that attempt."""
    issued = await service.verify_email(state, token=body.token, password=body.password, client=client)
    return session_response(state, response, issued)


@router.post("/email/verify-request", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def verify_request(body: EmailRequest, mailer: Mailer) -> StatusResponse:
    await mailer.after_response("verify_request", body.email, service.request_verification)
    return ACCEPTED
