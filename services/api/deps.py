"""Request dependencies: authentication, rate limiting, the tenant transaction, the current user.

Per request, in this order:

1. `authenticate`: the credential (today a bearer access token) verified with public keys only
   (signature, alg, kid, iss, aud, exp), at most once per token (`ClaimsCache`); then, in ONE
   Lua call (one Redis round trip), the three rate-limit windows and the revoked-session
   marker, checked on EVERY request (fail open when Redis is down).
2. `tenant_scope`: the tenant of the VERIFIED credential, bound with `set_config(..., true)`.
   A route that declares `TenantSession` gets one transaction, committed after the handler
   returns and before the response is sent, rolled back on any error; any other route reads
   with single statements that bind and read (`shared.db.tenant_read`), one round trip each.
   Row Level Security is the tenant boundary either way.
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
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy import Row, TextClause
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.keys import PublicKeys
from services.api.metrics import AUTH_FAILURES, REVOCATION_CHECK_FAIL_OPEN
from shared.access_tokens import AccessClaims, ClaimsCache, revoked_sid_key
from shared.db import TENANT_PARAM, tenant_bound, tenant_read
from shared.errors import Forbidden, RateLimited, Unauthorized
from shared.ratelimit import Decision, RateLimiter, Window, client_ip, ratelimit_headers
from shared.resources import ResourcesDep
from shared.settings import Settings

logger = logging.getLogger("blockbot.api.auth")

DECISION_SCOPE_KEY = "blockbot.ratelimit"
MISSING_TOKEN_DETAIL = "A bearer access token is required."


@dataclass(frozen=True)
class RatePolicy:
    """The api's three windows; periods are fixed by the design (tests may shorten them)."""

    org_limit: int
    user_limit: int
    endpoint_limit: int
    org_period_seconds: int = 3600
    user_period_seconds: int = 3600
    endpoint_period_seconds: int = 60

    @classmethod
    def from_settings(cls, settings: Settings) -> RatePolicy:
        return cls(
            org_limit=settings.ratelimit_org_per_hour,
            user_limit=settings.ratelimit_user_per_hour,
            endpoint_limit=settings.ratelimit_user_endpoint_per_minute,
        )

    def with_periods(self, org: int, user: int, endpoint: int) -> RatePolicy:
        return replace(
            self, org_period_seconds=org, user_period_seconds=user, endpoint_period_seconds=endpoint
        )

    def windows(self, claims: AccessClaims, method: str, route: str) -> list[Window]:
        user = str(claims.user_id)
        return [
            Window("org", str(claims.org_id), self.org_limit, self.org_period_seconds),
            Window("user", user, self.user_limit, self.user_period_seconds),
            Window(
                "user_endpoint", f"{user}:{method} {route}", self.endpoint_limit,
                self.endpoint_period_seconds,
            ),
        ]


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


async def _verified_claims(request: Request, token: str, resources: ResourcesDep) -> AccessClaims:
    """The token's claims: cached (verified before, unexpired, key still current) or verified now."""
    cache: ClaimsCache = request.app.state.claims_cache
    public_keys: PublicKeys = request.app.state.public_keys
    try:
        kid, claims = cache.lookup(token)
        keys = await public_keys.for_kid(kid)
        if claims is not None and kid in keys:
            return claims
        return cache.verify(token, kid, keys, resources.settings)
    except Unauthorized:
        _AUTH_INVALID.inc()
        raise


async def authenticate(request: Request, resources: ResourcesDep) -> AccessClaims:
    """Verify the credential, apply the rate limits, reject revoked sessions."""
    # A second credential kind (API keys) is verified here too, into the same claims shape;
    # the rate limits, the revocation marker and the tenant binding below stay one path.
    claims = await _verified_claims(request, _bearer_token(request), resources)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    policy: RatePolicy = request.app.state.rate_policy
    limiter: RateLimiter = request.app.state.rate_limiter
    # One Lua call: the three windows and the revoked-session marker (one round trip).
    decision = await limiter.check_fail_open(
        policy.windows(claims, request.method, route),
        flag_keys=[revoked_sid_key(resources.settings, claims.session_id)],
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


def _declares(dependant: Dependant, call: object) -> bool:
    return any(
        sub.call is call or _declares(sub, call) for sub in dependant.dependencies
    )


_TRANSACTION_FLAG = "_blockbot_tenant_transaction"


def _route_needs_transaction(request: Request) -> bool:
    """Whether the matched route declares `TenantSession` (worked out once per route)."""
    route = request.scope.get("route")
    if route is None:
        return True
    flag = getattr(route, _TRANSACTION_FLAG, None)
    if flag is None:
        dependant = getattr(route, "dependant", None)
        flag = dependant is None or _declares(dependant, tenant_session)
        setattr(route, _TRANSACTION_FLAG, flag)
    return bool(flag)


class TenantScope:
    """The request's access to its tenant's data: single bound statements, or one transaction.

    In a transaction the first `read` is the statement that binds the tenant for the rest of
    it (`current_user` makes sure it comes first); it is retried once, in a new transaction,
    when the pooled connection turns out dead (nothing has been done in the transaction yet).
    """

    def __init__(
        self, org_id: UUID, engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession] | None,
    ) -> None:
        self.org_id = org_id
        self._engine = engine
        self._sessionmaker = sessionmaker
        self.session: AsyncSession | None = None

    async def read(self, statement: TextClause, params: dict[str, object]) -> list[Row[Any]]:
        """Rows of a `tenant_bound` statement."""
        if self._sessionmaker is None:
            return await tenant_read(self._engine, self.org_id, statement, params)
        bound = {**params, TENANT_PARAM: str(self.org_id)}
        if self.session is not None:
            return list((await self.session.execute(statement, bound)).all())
        for attempt in (1, 2):
            session = self._sessionmaker()
            try:
                await session.begin()
                rows = list((await session.execute(statement, bound)).all())
            except DBAPIError as error:
                await session.close()
                if attempt == 2 or not error.connection_invalidated:
                    raise
                continue
            except BaseException:
                await session.close()
                raise
            self.session = session
            return rows
        raise AssertionError("unreachable")

    async def finish(self, ok: bool) -> None:
        """Commit (or roll back) and release the transaction, if one was opened."""
        session, self.session = self.session, None
        if session is None:
            return
        try:
            if ok:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()


async def tenant_scope(
    claims: Claims, resources: ResourcesDep, request: Request
) -> AsyncIterator[TenantScope]:
    """The verified credential's tenant; a transaction only for routes that declare one."""
    transactional = _route_needs_transaction(request)
    scope = TenantScope(
        claims.org_id, resources.engine, resources.sessionmaker if transactional else None
    )
    if not transactional:
        yield scope
        return
    try:
        yield scope
    except BaseException:
        await scope.finish(ok=False)
        raise
    await scope.finish(ok=True)


Tenant = Annotated[TenantScope, Depends(tenant_scope, scope="function")]


@dataclass(frozen=True)
class Principal:
    """The verified caller: token claims plus their current user row and org."""

    claims: AccessClaims
    user_id: UUID
    org_id: UUID
    email: str
    name: str
    role: str
    email_verified_at: datetime | None
    created_at: datetime
    org_name: str
    org_created_at: datetime
    org_updated_at: datetime

    @property
    def is_manager(self) -> bool:
        return self.role in ("owner", "admin")

    def require_manager(self) -> None:
        if not self.is_manager:
            raise Forbidden("Only an owner or an admin can do this.")


_PRINCIPAL = tenant_bound(
    "SELECT u.email, u.name, u.role, u.email_verified_at, u.created_at,"
    " o.name AS org_name, o.created_at AS org_created_at, o.updated_at AS org_updated_at"
    " FROM users u JOIN organizations o ON o.id = u.org_id"
    " WHERE u.id = :id"
)


async def current_user(claims: Claims, tenant: Tenant) -> Principal:
    """The caller's row, read by the statement that binds the tenant."""
    rows = await tenant.read(_PRINCIPAL, {"id": claims.user_id})
    if not rows:
        _AUTH_UNKNOWN_USER.inc()
        raise Unauthorized("The user of this access token no longer exists.")
    row = rows[0]
    return Principal(
        claims=claims, user_id=claims.user_id, org_id=claims.org_id, email=row.email,
        name=row.name, role=row.role, email_verified_at=row.email_verified_at,
        created_at=row.created_at, org_name=row.org_name, org_created_at=row.org_created_at,
        org_updated_at=row.org_updated_at,
    )


CurrentUser = Annotated[Principal, Depends(current_user)]


async def tenant_session(tenant: Tenant, me: CurrentUser) -> AsyncSession:
    """The request's transaction, its tenant already bound by the caller's read (`me`)."""
    del me  # declared for its order: it binds the tenant with the transaction's first statement
    assert tenant.session is not None, "a TenantSession route opens a transaction"
    return tenant.session


TenantSession = Annotated[AsyncSession, Depends(tenant_session)]


def request_ip(request: Request) -> str | None:
    """The client address for the audit log (X-Forwarded-For only from trusted proxies)."""
    settings: Settings = request.app.state.resources.settings
    address = client_ip(request, settings)
    return None if address == "0.0.0.0" else address


class RateLimitHeadersMiddleware:
    """Adds RateLimit-* headers to every response for which a decision was made."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = scope.get(DECISION_SCOPE_KEY)
                if decision is not None:
                    headers: list[Any] = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    for name, value in ratelimit_headers(decision).items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)
