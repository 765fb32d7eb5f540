"""The api's request dependencies: who is calling, what they may do, and their tenant transaction.

A route declares them as aliases in its signature (the request path is described once, in the
README, "The api's request path"):

- `Caller`: a person or an API key (whose scopes cover the method); `CurrentUser`: a person only
  (an API key is a 403); `Manager`: a person who is an owner or an admin.
- `TenantSession`: the route's transaction, bound to the caller's org, committed after the
  handler returns and before the response is sent, rolled back on any error.

Each is a FastAPI dependency on `Credential`, which FastAPI runs once per request (its own
dependency cache); they take the process's state from the request (`api_state`), one dependency
fewer to solve on every request. A refused caller is refused before the transaction opens: routes list the
caller before `TenantSession`.

Redis down and the revocation check: it FAILS OPEN, logged and counted
(`api_revocation_check_fail_open_total`). The api's contract is to stay available when Redis
is down (rate limits fail open too); the exposure is bounded: access tokens live 15 minutes,
and a removed or disabled user is refused anyway because the caller is read from the database
on every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.api_keys import credential as api_key
from services.api.api_keys.credential import ApiKeyNotAllowed, KeyPrincipal
from services.api.api_keys.lookup_budget import verify_within_budget
from services.api.me import queries
from services.api.metrics import (
    AUTH_FAILURES,
    KEY_AUTH_FAILURES,
    REQUESTS_BY_CREDENTIAL,
    REVOCATION_CHECK_FAIL_OPEN,
)
from services.api.principal import Principal
from services.api.second_factor.policy import require_org_level
from services.api.state import ApiState
from shared.access_tokens import AccessClaims, revoked_sid_key
from shared.api_keys import is_api_key
from shared.bearer import bearer_token
from shared.db import transaction
from shared.errors import Unauthorized
from shared.openapi import BEARER_AUTH, requires_security
from shared.ratelimit import Decision, client_ip, raise_if_limited
from shared.ratelimit_headers import remember
from shared.settings import Settings

MISSING_TOKEN_DETAIL = "A bearer access token is required."

_AUTH_MISSING = AUTH_FAILURES.labels("missing")
_AUTH_INVALID = AUTH_FAILURES.labels("invalid")
_AUTH_REVOKED = AUTH_FAILURES.labels("revoked")
_AUTH_UNKNOWN_USER = AUTH_FAILURES.labels("unknown_user")
_USER_REQUESTS = REQUESTS_BY_CREDENTIAL.labels("user")
_KEY_REQUESTS = REQUESTS_BY_CREDENTIAL.labels("api_key")
_KEY_NOT_ALLOWED = KEY_AUTH_FAILURES.labels("not_allowed")


def api_state(request: Request) -> ApiState:
    """The process's state (built in the app lifespan)."""
    state: ApiState = request.app.state.api
    return state


async def get_state(request: Request) -> ApiState:
    """The process's state. Async on purpose: FastAPI runs sync dependencies in a thread."""
    return api_state(request)


ApiDep = Annotated[ApiState, Depends(get_state)]


@requires_security(BEARER_AUTH)
async def authenticate(request: Request) -> AccessClaims | KeyPrincipal:
    """The verified credential, its rate limits applied: an access token or an API key."""
    state = api_state(request)
    header = request.headers.get("authorization")
    token = bearer_token(header)
    if token is None:
        (_AUTH_INVALID if header else _AUTH_MISSING).inc()
        raise Unauthorized(MISSING_TOKEN_DETAIL)
    if is_api_key(token):
        return await _authenticate_key(request, state, token)
    return await _authenticate_token(request, state, token)


Credential = Annotated[AccessClaims | KeyPrincipal, Depends(authenticate)]


async def _authenticate_token(request: Request, state: ApiState, token: str) -> AccessClaims:
    """Verify the token (at most once per token: `ClaimsCache`), then in ONE Lua call (one Redis
    round trip) its three rate-limit windows and its session's revocation marker."""
    try:
        kid, claims = state.claims_cache.lookup(token)
        keys = await state.public_keys.for_kid(kid)
        if claims is None or kid not in keys:
            claims = state.claims_cache.verify(token, kid, keys, state.settings)
    except Unauthorized:
        _AUTH_INVALID.inc()
        raise
    decision = await state.limiter.check_fail_open(
        state.rate_policy.windows(claims, request.method, _route(request)),
        flag_keys=[revoked_sid_key(state.settings, claims.session_id)],
    )
    if decision is None:
        # Counted, not logged per request: the guard logs the outage once, when its breaker opens
        # and closes (a line per request would flood the logs for as long as Redis is down).
        REVOCATION_CHECK_FAIL_OPEN.inc()
    elif decision.flagged:
        remember(request, decision)
        _AUTH_REVOKED.inc()
        raise Unauthorized("The session of this access token has been revoked.")
    else:
        _enforce(request, decision)
    _USER_REQUESTS.inc()
    return claims


async def _authenticate_key(request: Request, state: ApiState, token: str) -> KeyPrincipal:
    """An API key: its shape, ONE statement that verifies it and reads its org, its windows (the
    org's, the key's, the key's per endpoint) in one Lua call, then its scope for the method."""
    presented = api_key.presented(token, state.settings)
    # Refused lookups count per network: past the budget, a 429 before the database.
    key = await verify_within_budget(request, state, presented)
    windows = state.rate_policy.key_windows(key.org_id, key.key_id, request.method, _route(request))
    decision = await state.limiter.check_fail_open(windows)
    if decision is not None:
        _enforce(request, decision)
    api_key.require_scope(key, request.method)
    _KEY_REQUESTS.inc()
    return key


def _route(request: Request) -> str:
    """The route template (the raw path only if no route matched, which cannot happen here)."""
    path = getattr(request.scope.get("route"), "path", None)
    return path if isinstance(path, str) else request.url.path


def _enforce(request: Request, decision: Decision) -> None:
    """Leave the decision for the RateLimit-* headers; a refused one is a 429."""
    remember(request, decision)
    raise_if_limited(decision)


async def _person(request: Request, claims: AccessClaims) -> Principal:
    """The person as the database knows them now, read by ONE statement bound to their org (a
    user deleted or disabled since the token was issued is a 401; a token below the org's
    second-factor policy is a 403)."""
    state = api_state(request)
    row = await queries.caller(state.engine, claims.org_id, claims.user_id)
    if row is None:
        _AUTH_UNKNOWN_USER.inc()
        raise Unauthorized("The user of this access token no longer exists or is disabled.")
    require_org_level(row, claims)  # the org's second-factor policy
    return Principal(
        **vars(row),
        claims=claims,
        user_id=claims.user_id,
        org_id=claims.org_id,
        address=partial(request_ip, request, state.settings),
    )


async def current_user(request: Request, credential: Credential) -> Principal:
    """A person: an API key is refused (403) on the routes that take `CurrentUser`."""
    if isinstance(credential, KeyPrincipal):
        _KEY_NOT_ALLOWED.inc()
        raise ApiKeyNotAllowed()
    return await _person(request, credential)


CurrentUser = Annotated[Principal, Depends(current_user)]


async def caller(request: Request, credential: Credential) -> Principal | KeyPrincipal:
    """The caller of a route that also serves API keys: a person, or a key (scope checked)."""
    if isinstance(credential, KeyPrincipal):
        return credential
    return await _person(request, credential)


Caller = Annotated[Principal | KeyPrincipal, Depends(caller)]


async def manager(me: CurrentUser) -> Principal:
    """A person who is an owner or an admin (their role in the database now); else a 403."""
    me.require_manager()
    return me


Manager = Annotated[Principal, Depends(manager)]


async def tenant_session(request: Request, credential: Credential) -> AsyncIterator[AsyncSession]:
    """The request's transaction, bound to the verified credential's org."""
    async with transaction(api_state(request).sessionmaker, credential.org_id) as session:
        yield session


# scope="function": committed when the handler returns, before the response is sent.
TenantSession = Annotated[AsyncSession, Depends(tenant_session, scope="function")]


def request_ip(request: Request, settings: Settings) -> str | None:
    """The client address for the audit log (X-Forwarded-For only from trusted proxies)."""
    address = client_ip(request, settings)
    return None if address == "0.0.0.0" else address
