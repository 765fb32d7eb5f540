"""The api service app: `create_api_app(settings)`; run as `uvicorn services.api.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.api.api_keys import routes as api_keys
from services.api.audit_log import routes as audit_log
from services.api.invitations import routes as invitations
from services.api.keys import PublicKeys, static_keys
from services.api.limits import RatePolicy
from services.api.me import routes as me
from services.api.members import routes as members
from services.api.org import routes as org
from services.api.second_factor import routes as second_factor
from services.api.state import ApiState
from shared.access_tokens import ClaimsCache
from shared.api_keys import hashing_key
from shared.app import create_app
from shared.bodylimit import install_body_limit
from shared.ratelimit import RateLimiter
from shared.resources import Resources
from shared.settings import Settings, SettingsError


def create_api_app(settings: Settings, resources: Resources | None = None) -> FastAPI:
    """Build the api app. It only ever reads PUBLIC keys (JWT_PUBLIC_KEYS or JWKS_URL)."""
    problems = []
    if not settings.jwt_public_keys and settings.jwks_url is None:
        problems.append("JWKS_URL or JWT_PUBLIC_KEYS: required for the api service")
    if settings.database_url is None:
        problems.append("DATABASE_URL: required for the api service")
    try:
        hashing_key(settings)
    except SettingsError as error:
        problems.extend(error.lines)
    if problems:
        raise SettingsError(problems)
    static_keys(settings)  # fail start-up on a malformed key

    @asynccontextmanager
    async def lifespan(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            keys = PublicKeys(settings, http)
            if keys.uses_jwks:
                await keys.refresh()  # best effort: the auth service may start after us
            app.state.api = ApiState(
                settings=settings,
                engine=res.engine,
                sessionmaker=res.sessionmaker,
                redis=res.redis,
                public_keys=keys,
                limiter=RateLimiter(res.redis, settings, res.redis_guard),
                rate_policy=RatePolicy.from_settings(settings),
                claims_cache=ClaimsCache(),
            )
            yield

    app = create_app(
        title="BlockBot API",
        settings=settings,
        routers=[
            me.router,
            org.router,
            members.router,
            invitations.router,
            audit_log.router,
            api_keys.router,
            second_factor.router,
        ],
        service_lifespan=lifespan,
        resources=resources,
    )
    install_body_limit(app, settings.api_max_body_bytes)
    return app
