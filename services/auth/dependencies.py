"""FastAPI dependencies of the auth routes: the service state, the caller, the bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.exceptions import RedisError

from services.auth.state import AuthState, ClientInfo
from shared.access_tokens import AccessClaims, is_session_revoked, verify_access_token
from shared.errors import ServiceUnavailable, Unauthorized
from shared.ratelimit import client_ip

REFRESH_COOKIE = "bb_refresh"
COOKIE_PATH = "/api/v1/auth"


async def get_state(request: Request) -> AuthState:
    state: AuthState = request.app.state.auth
    return state


AuthDep = Annotated[AuthState, Depends(get_state)]


async def get_client(request: Request, state: AuthDep) -> ClientInfo:
    agent = request.headers.get("user-agent")
    return ClientInfo(ip=client_ip(request, state.settings), user_agent=agent[:512] if agent else None)


Client = Annotated[ClientInfo, Depends(get_client)]


async def get_current_claims(request: Request, state: AuthDep) -> AccessClaims:
    """The verified bearer token of a live session (revocation checked in Redis, fail closed)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer access token is required.")
    claims = verify_access_token(token.strip(), state.keyring.public_keys, state.settings)
    try:
        revoked = await is_session_revoked(state.redis, state.settings, claims.session_id)
    except (RedisError, OSError) as error:
        raise ServiceUnavailable("A dependency is unavailable; retry later.") from error
    if revoked:
        raise Unauthorized("The session has been revoked.")
    return claims


CurrentUser = Annotated[AccessClaims, Depends(get_current_claims)]
