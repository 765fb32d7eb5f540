"""Request dependencies: authentication, rate limiting, the tenant transaction, the current user.

Per request, in this order:

1. `authenticate`: bearer token verified with public keys only (signature, alg, kid, iss, aud,
   exp); then, in ONE Lua call (one Redis round trip), the three rate-limit windows and the
   revoked-session marker (fail open when Redis is down).
2. `TenantSession`: one transaction bound (`set_config(..., true)`) to the org of the VERIFIED
   token, committed after the handler returns and before the response is sent, rolled back on
   any error. Row Level Security is the tenant boundary.
3. `CurrentUser`: the caller's user row loaded inside that transaction; a user deleted since
   the token was issued is a 401. Permission checks use the role in the database, never the
   (possibly stale) role claim.

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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.keys import PublicKeys
from services.api.metrics import AUTH_FAILURES, REVOCATION_CHECK_FAIL_OPEN
from shared.access_tokens import AccessClaims, revoked_sid_key, verify_access_token
from shared.db import tenant_transaction
from shared.errors import Forbidden, RateLimited, Unauthorized
from shared.openapi import BEARER_AUTH, requires_security
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


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        AUTH_FAILURES.labels("missing").inc()
        raise Unauthorized(MISSING_TOKEN_DETAIL)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 4096:
        AUTH_FAILURES.labels("invalid").inc()
        raise Unauthorized(MISSING_TOKEN_DETAIL)
    return token


@requires_security(BEARER_AUTH)
async def authenticate(request: Request, resources: ResourcesDep) -> AccessClaims:
    """Verify the bearer token, apply the rate limits, reject revoked sessions."""
    token = _bearer_token(request)
    public_keys: PublicKeys = request.app.state.public_keys
    keys = await public_keys.for_token(token)
    try:
        claims = verify_access_token(token, keys, resources.settings)
    except Unauthorized:
        AUTH_FAILURES.labels("invalid").inc()
        raise
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
        AUTH_FAILURES.labels("revoked").inc()
        raise Unauthorized("The session of this access token has been revoked.")
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit exceeded ({decision.scope}); retry in {decision.retry_after} s.",
            headers=ratelimit_headers(decision),
        )
    return claims


Claims = Annotated[AccessClaims, Depends(authenticate)]


async def tenant_session(claims: Claims, resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request, bound to the verified token's org; commits before responding."""
    async with tenant_transaction(resources.sessionmaker, claims.org_id) as session:
        yield session


TenantSession = Annotated[AsyncSession, Depends(tenant_session, scope="function")]


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


async def current_user(claims: Claims, session: TenantSession) -> Principal:
    row = (
        await session.execute(
            text(
                "SELECT u.email, u.name, u.role, u.email_verified_at, u.created_at,"
                " o.name AS org_name, o.created_at AS org_created_at,"
                " o.updated_at AS org_updated_at"
                " FROM users u JOIN organizations o ON o.id = u.org_id"
                " WHERE u.id = :id"
            ),
            {"id": claims.user_id},
        )
    ).one_or_none()
    if row is None:
        AUTH_FAILURES.labels("unknown_user").inc()
        raise Unauthorized("The user of this access token no longer exists.")
    return Principal(
        claims=claims, user_id=claims.user_id, org_id=claims.org_id, email=row.email,
        name=row.name, role=row.role, email_verified_at=row.email_verified_at,
        created_at=row.created_at, org_name=row.org_name, org_created_at=row.org_created_at,
        org_updated_at=row.org_updated_at,
    )


CurrentUser = Annotated[Principal, Depends(current_user)]


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
