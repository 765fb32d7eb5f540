"""Request dependencies: authentication, rate limiting, the tenant transaction, the current user.

Per request, in this order:

1. `authenticate`: bearer token verified with public keys only (signature, alg, kid, iss, aud,
   exp), at most once per token (`ClaimsCache`: its header parsed once, its verified claims
   kept until exp); then, in ONE Lua call (one Redis round trip), the three rate-limit windows
   and the revoked-session marker, checked on EVERY request (fail open when Redis is down).
2. `tenant_scope`: the tenant of the VERIFIED credential, bound with `set_config(..., true)`
   (`shared.db.TenantScope`). A route that declares `TenantSession` gets one transaction,
   committed after the handler returns and before the response is sent, rolled back on any
   error; any other route reads with single statements that bind the tenant and read, one
   round trip each, in implicit transactions. Row Level Security is the tenant boundary.
3. `CurrentUser`: the caller's user row, read by the statement that binds the tenant (so
   `GET /me` is ONE PostgreSQL round trip; in a transaction it is its first statement); a user
   deleted since the token was issued is a 401. Permission checks use the role in the database,
   never the (possibly stale) role claim.

An API key (`Bearer bb_...`, services/api/api_keys/credential.py) takes the same path with two
differences: its org is only known from its row, so it is verified first, by ONE statement of
its own that also reads the key's org (so `GET /me` with a key is that one round trip), then its
windows (the org's, the key's, the key's per endpoint) in the same single Lua call, then step 2
binds its org like a token's; and step 3 refuses it (`CurrentUser` is a person) unless the
route takes `Caller`, which admits keys whose scopes cover the method.

How: each alias a route declares (`CurrentUser`, `Caller`, `TenantSession`) is ONE FastAPI
dependency taking the request; the steps above are plain calls inside it, each done once per
request (kept in the ASGI scope), so a route pays for one dependency, not a tree of them.
Only `TenantSession` is a generator (its transaction must be committed before responding).
When the caller's read opened that transaction (the route declares `TenantSession`, after the
caller as every route does), `TenantSession` commits it; if the caller is refused first, the
refusal rolls it back.

Redis down and the revocation check: it FAILS OPEN, logged and counted
(`api_revocation_check_fail_open_total`). The api's contract is to stay available when Redis
is down (rate limits fail open too); the exposure is bounded: access tokens live 15 minutes,
and a removed user is refused anyway because step 3 reads the database on every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.api_keys import credential as api_key
from services.api.api_keys.credential import ApiKeyNotAllowed, KeyCredential, KeyPrincipal
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
from shared.db import TenantScope
from shared.errors import RateLimited, Unauthorized
from shared.openapi import BEARER_AUTH, requires_security
from shared.ratelimit import Decision, Window, client_ip, ratelimit_headers
from shared.ratelimit_headers import remember
from shared.settings import Settings

MISSING_TOKEN_DETAIL = "A bearer access token is required."

# Per-request results, kept in the ASGI scope: each step runs once whichever alias asks first.
_CREDENTIAL = "blockbot.credential"
_TENANT = "blockbot.tenant"
_KEY = "blockbot.api_key"


def api_state(request: Request) -> ApiState:
    """The process's state (built in the app lifespan)."""
    state: ApiState = request.app.state.api
    return state


async def get_state(request: Request) -> ApiState:
    """The process's state. Async on purpose: FastAPI runs sync dependencies in a thread."""
    return api_state(request)


ApiDep = Annotated[ApiState, Depends(get_state)]


_AUTH_MISSING = AUTH_FAILURES.labels("missing")
_AUTH_INVALID = AUTH_FAILURES.labels("invalid")
_AUTH_REVOKED = AUTH_FAILURES.labels("revoked")
_AUTH_UNKNOWN_USER = AUTH_FAILURES.labels("unknown_user")
_USER_REQUESTS = REQUESTS_BY_CREDENTIAL.labels("user")
_KEY_REQUESTS = REQUESTS_BY_CREDENTIAL.labels("api_key")
_KEY_NOT_ALLOWED = KEY_AUTH_FAILURES.labels("not_allowed")


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    token = bearer_token(header)
    if token is None:
        (_AUTH_INVALID if header else _AUTH_MISSING).inc()
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


async def authenticate(request: Request) -> AccessClaims | KeyCredential:
    """Verify the bearer token, apply the rate limits, reject revoked sessions (once per request).

    An API key is only shape-checked here: it is verified by `tenant_scope`, in the database.
    """
    credential: AccessClaims | KeyCredential | None = request.scope.get(_CREDENTIAL)
    if credential is None:
        credential = await _authenticate(request, api_state(request))
        request.scope[_CREDENTIAL] = credential
    return credential


async def _authenticate(request: Request, state: ApiState) -> AccessClaims | KeyCredential:
    token = _bearer_token(request)
    if is_api_key(token):
        return api_key.presented(token, state.settings)
    claims = await _verified_claims(token, state)
    # One Lua call: the three windows and the revoked-session marker (one round trip).
    decision = await state.limiter.check_fail_open(
        state.rate_policy.windows(claims, request.method, _route(request)),
        flag_keys=[revoked_sid_key(state.settings, claims.session_id)],
    )
    if decision is None:
        # Counted, not logged per request: the guard logs the outage once, when its breaker opens
        # and closes (a line per request would flood the logs for as long as Redis is down).
        REVOCATION_CHECK_FAIL_OPEN.inc()
        _USER_REQUESTS.inc()
        return claims
    remember(request, decision)
    if decision.flagged:
        _AUTH_REVOKED.inc()
        raise Unauthorized("The session of this access token has been revoked.")
    _enforce(request, decision)
    _USER_REQUESTS.inc()
    return claims


def _route(request: Request) -> str:
    """The route template (the raw path only if no route matched, which cannot happen here)."""
    path = getattr(request.scope.get("route"), "path", None)
    return path if isinstance(path, str) else request.url.path


def _enforce(request: Request, decision: Decision) -> None:
    """Leave the decision for the RateLimit-* headers; a refused one is a 429."""
    remember(request, decision)
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit exceeded ({decision.scope}); retry in {decision.retry_after} s.",
            headers=ratelimit_headers(decision),
        )


async def _limit_key(request: Request, state: ApiState, key: KeyPrincipal) -> None:
    """The key's windows (org, key, key per endpoint) in one Lua call; fail open like tokens."""
    windows: list[Window] = state.rate_policy.key_windows(
        key.org_id, key.key_id, request.method, _route(request)
    )
    decision = await state.limiter.check_fail_open(windows)
    if decision is not None:
        _enforce(request, decision)


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


async def tenant_scope(request: Request) -> TenantScope:
    """The verified credential's tenant (once per request): a transaction for routes that
    declare `TenantSession` (opened by the first read), single bound statements otherwise.
    An API key is verified here first, by one statement of its own, then bound exactly as a
    token's org is."""
    tenant: TenantScope | None = request.scope.get(_TENANT)
    if tenant is not None:
        return tenant
    credential = await authenticate(request)
    state = api_state(request)
    if isinstance(credential, AccessClaims):
        org_id = credential.org_id
    else:
        key = await verify_within_budget(request, state, credential)
        await _limit_key(request, state, key)
        api_key.require_scope(key, request.method)
        request.scope[_KEY] = key
        _KEY_REQUESTS.inc()
        org_id = key.org_id
    sessionmaker = state.sessionmaker if _route_needs_transaction(request) else None
    tenant = TenantScope(org_id, state.engine, sessionmaker)
    request.scope[_TENANT] = tenant
    return tenant


@requires_security(BEARER_AUTH)
async def tenant_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction, bound to the verified credential's org, committed after the
    handler returns and before the response is sent, rolled back on any error.

    After `CurrentUser` (the usual order) it is already open, bound by the caller's read.
    """
    tenant = await tenant_scope(request)
    try:
        yield await tenant.transaction()
    except BaseException:
        await tenant.finish(ok=False)
        raise
    await tenant.finish(ok=True)


TenantSession = Annotated[AsyncSession, Depends(tenant_session, scope="function")]


@requires_security(BEARER_AUTH)
async def current_user(request: Request) -> Principal:
    """The caller as the database knows them now; a user deleted since the token is a 401.

    A person only: an API key is refused (403) on the routes that take `CurrentUser`.
    """
    credential = await authenticate(request)
    if not isinstance(credential, AccessClaims):
        await tenant_scope(request)  # a bad key is a 401, a missing scope a 403 of its own
        _KEY_NOT_ALLOWED.inc()
        raise ApiKeyNotAllowed()
    return await _person(request, credential)


CurrentUser = Annotated[Principal, Depends(current_user)]


@requires_security(BEARER_AUTH)
async def caller(request: Request) -> Principal | KeyPrincipal:
    """The caller of a route that also serves API keys: a person, or a key (scope checked)."""
    credential = await authenticate(request)
    if isinstance(credential, AccessClaims):
        return await _person(request, credential)
    await tenant_scope(request)  # verifies the key
    key: KeyPrincipal = request.scope[_KEY]
    return key


Caller = Annotated[Principal | KeyPrincipal, Depends(caller)]


async def _person(request: Request, claims: AccessClaims) -> Principal:
    tenant = await tenant_scope(request)
    opened = tenant.session is None
    try:
        row = await queries.caller(tenant, claims.user_id)
        if row is None:
            _AUTH_UNKNOWN_USER.inc()
            raise Unauthorized("The user of this access token no longer exists or is disabled.")
        require_org_level(row, claims)  # the org's second-factor policy (issue 24)
    except BaseException:
        if opened:  # this read opened the route's transaction: nothing will commit it now
            await tenant.finish(ok=False)
        raise
    return Principal(
        **vars(row),
        claims=claims,
        user_id=claims.user_id,
        org_id=claims.org_id,
        address=partial(request_ip, request, api_state(request).settings),
    )


def request_ip(request: Request, settings: Settings) -> str | None:
    """The client address for the audit log (X-Forwarded-For only from trusted proxies)."""
    address = client_ip(request, settings)
    return None if address == "0.0.0.0" else address
