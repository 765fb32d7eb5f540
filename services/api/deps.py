"""Request dependencies: authentication, rate limiting, the tenant transaction, the current user.

Per request, in this order:

1. `authenticate`: the credential (today a bearer access token) verified with public keys only
   (signature, alg, kid, iss, aud, exp), at most once per token (`ClaimsCache`); then, in ONE
   Lua call (one Redis round trip), the three rate-limit windows and the revoked-session
   marker, checked on EVERY request (fail open when Redis is down).
2. `tenant_scope`: the tenant of the VERIFIED credential, bound with `set_config(..., true)`
   (`shared.db.TenantScope`). A route that declares `TenantSession` gets one transaction,
   committed after the handler returns and before the response is sent, rolled back on any
   error; any other route reads with single statements that bind and read, one round trip
   each. Row Level Security is the tenant boundary either way.
3. `CurrentUser`: the caller's user row, read by the statement that binds the tenant (so
   `GET /me` is one PostgreSQL round trip; in a transaction it is its first statement); a user
   deleted since the token was issued is a 401. Permission checks use the role in the database,
   never the (possibly stale) role claim.

Redis down and the revocation check: it FAILS OPEN, logged and counted
(`api_revocation_check_fail_open_total`). The api's contract is to stay available when Redis
is down (rate limits fail open too); the exposure is bounded: access tokens live 15 minutes,
and a removed user is refused anyway because step 3 reads the database on every request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.limits import DECISION_SCOPE_KEY
from services.api.me import queries
from services.api.metrics import AUTH_FAILURES, REVOCATION_CHECK_FAIL_OPEN
from services.api.principal import Principal
from services.api.state import ApiState
from shared.access_tokens import AccessClaims, revoked_sid_key
from shared.db import TenantScope
from shared.errors import RateLimited, Unauthorized
from shared.ratelimit import client_ip, ratelimit_headers
from shared.settings import Settings

logger = logging.getLogger("blockbot.api.auth")

MISSING_TOKEN_DETAIL = "A bearer access token is required."


async def get_state(request: Request) -> ApiState:
    """The process's state. Async on purpose: FastAPI runs sync dependencies in a thread."""
    state: ApiState = request.app.state.api
    return state


ApiDep = Annotated[ApiState, Depends(get_state)]


_AUTH_MISSING = AUTH_FAILURES.labels("missing")
_AUTH_INVALID = AUTH_FAILURES.labels("invalid")
_AUTH_REVOKED = AUTH_FAILURES.labels("revoked")
_AUTH_UNKNOWN_USER = AUTH_FAILURES.labels("unknown_user")


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        _AUTH_MISSING.inc()
        raise Unauthorized(MISSING_TOKEN_DETAIL)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 4096:
        _AUTH_INVALID.inc()
        raise Unauthorized(MISSING_TOKEN_DETAIL)
    return token


async def _verified_claims(token: str, state: ApiState) -> AccessClaims:
    """The token's claims: cached (verified before, unexpired, key still current) or verified now."""
    try:
        kid, claims = state.claims_cache.lookup(token)
        keys = await state.public_keys.for_kid(kid)
        if claims is not None and kid in keys:
            return claims
        return state.claims_cache.verify(token, kid, keys, state.settings)
    except Unauthorized:
        _AUTH_INVALID.inc()
        raise


async def authenticate(request: Request, state: ApiDep) -> AccessClaims:
    """Verify the credential, apply the rate limits, reject revoked sessions."""
    # A second credential kind (API keys) is verified here too, into the same claims shape;
    # the rate limits, the revocation marker and the tenant binding below stay one path.
    claims = await _verified_claims(_bearer_token(request), state)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    # One Lua call: the three windows and the revoked-session marker (one round trip).
    decision = await state.limiter.check_fail_open(
        state.rate_policy.windows(claims, request.method, route),
        flag_keys=[revoked_sid_key(state.settings, claims.session_id)],
    )
    if decision is None:
        REVOCATION_CHECK_FAIL_OPEN.inc()
        logger.warning("revoked-session check unavailable (Redis down), failing open")
        return claims
    request.scope[DECISION_SCOPE_KEY] = decision
    if decision.flagged:
        _AUTH_REVOKED.inc()
        raise Unauthorized("The session of this access token has been revoked.")
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit exceeded ({decision.scope}); retry in {decision.retry_after} s.",
            headers=ratelimit_headers(decision),
        )
    return claims


Claims = Annotated[AccessClaims, Depends(authenticate)]


_TRANSACTION_FLAG = "_blockbot_tenant_transaction"


def _declares(dependant: Dependant, call: object) -> bool:
    return any(sub.call is call or _declares(sub, call) for sub in dependant.dependencies)


def _route_needs_transaction(request: Request) -> bool:
    """Whether the matched route declares `TenantSession` (worked out once per route)."""
    route = request.scope.get("route")
    flag = getattr(route, _TRANSACTION_FLAG, None)
    if flag is None:
        dependant = getattr(route, "dependant", None)
        flag = dependant is None or _declares(dependant, tenant_session)
        if route is not None:
            setattr(route, _TRANSACTION_FLAG, flag)
    return bool(flag)


async def tenant_scope(claims: Claims, state: ApiDep, request: Request) -> AsyncIterator[TenantScope]:
    """The verified credential's tenant; a transaction only for routes that declare one."""
    if not _route_needs_transaction(request):
        yield TenantScope(claims.org_id, state.engine)
        return
    scope = TenantScope(claims.org_id, state.engine, state.sessionmaker)
    try:
        yield scope
    except BaseException:
        await scope.finish(ok=False)
        raise
    await scope.finish(ok=True)


Tenant = Annotated[TenantScope, Depends(tenant_scope, scope="function")]


async def current_user(
    claims: Claims, tenant: Tenant, request: Request, state: ApiDep
) -> Principal:
    """The caller as the database knows them now, read by the statement binding the tenant."""
    row = await queries.caller(tenant, claims.user_id)
    if row is None:
        _AUTH_UNKNOWN_USER.inc()
        raise Unauthorized("The user of this access token no longer exists.")
    return Principal(
        **vars(row), claims=claims, user_id=claims.user_id, org_id=claims.org_id,
        ip=request_ip(request, state.settings),
    )


CurrentUser = Annotated[Principal, Depends(current_user)]


async def tenant_session(tenant: Tenant, me: CurrentUser) -> AsyncSession:
    """The request's transaction, its tenant already bound by the caller's read (`me`)."""
    del me  # declared for its order: it binds the tenant with the transaction's first statement
    assert tenant.session is not None, "a TenantSession route opens a transaction"
    return tenant.session


TenantSession = Annotated[AsyncSession, Depends(tenant_session)]


def request_ip(request: Request, settings: Settings) -> str | None:
    """The client address for the audit log (X-Forwarded-For only from trusted proxies)."""
    address = client_ip(request, settings)
    return None if address == "0.0.0.0" else address
