"""What the auth routes answer with: the token response and the refresh cookie that goes with it."""

from __future__ import annotations

from fastapi import Depends, Response

from services.auth.accounts.service import Issued
from services.auth.deps import COOKIE_PATH, refresh_cookie_name
from services.auth.factors.challenges import Pending
from services.auth.factors.errors import SecondFactorChallenge
from services.auth.identities.service import Identity
from services.auth.schemas import OrgOut, StatusResponse, TokenResponse
from services.auth.state import AuthState
from shared.user_schema import public_user

ACCEPTED = StatusResponse(status="accepted")


async def no_store(response: Response) -> None:
    """The answer carries a secret (a TOTP secret, recovery codes, a challenge, a token): no
    cache keeps it."""
    response.headers["Cache-Control"] = "no-store"


NoStore = Depends(no_store)


def set_refresh_cookie(response: Response, state: AuthState, token: str) -> None:
    """The httpOnly, SameSite=Strict refresh cookie, scoped to the auth paths."""
    response.set_cookie(
        refresh_cookie_name(state.settings),
        token,
        max_age=state.settings.refresh_token_ttl_seconds,
        path=COOKIE_PATH,
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def clear_refresh_cookie(response: Response, state: AuthState) -> None:
    """Tell the browser to drop the refresh cookie."""
    response.delete_cookie(
        refresh_cookie_name(state.settings),
        path=COOKIE_PATH,
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def token_body(state: AuthState, identity: Identity, access_token: str) -> TokenResponse:
    """The token response of a user and their org."""
    user = identity.user
    return TokenResponse(
        user=public_user(user.id, user),
        org=OrgOut(id=user.org_id, name=identity.org_name),
        access_token=access_token,
        expires_in=state.settings.access_token_ttl_seconds,
    )


def token_response(
    state: AuthState, response: Response, identity: Identity, access_token: str, refresh_token: str
) -> TokenResponse:
    """The token response, with its refresh cookie set and caching forbidden."""
    set_refresh_cookie(response, state, refresh_token)
    response.headers["Cache-Control"] = "no-store"
    return token_body(state, identity, access_token)


def session_response(state: AuthState, response: Response, issued: Issued | Pending) -> TokenResponse:
    """The token response of a new session; for an account with a second factor, the sign-in
    challenge (a 401 `second-factor-challenge` problem, no tokens, no cookie)."""
    if isinstance(issued, Pending):
        raise SecondFactorChallenge(issued)
    body = token_response(state, response, issued.identity, issued.access_token, issued.refresh_token)
    if issued.second_factor_enrolment_required:
        body.second_factor_enrolment_required = True
    return body
