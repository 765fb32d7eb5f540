"""The auth service app: `create_auth_app(settings)`; `services.auth.main:app` for uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.auth.accounts import routes as accounts
from services.auth.deferred import drain
from services.auth.discovery import routes as discovery
from services.auth.factors import routes as factors
from services.auth.factors.crypto import load_secret_box
from services.auth.housekeeping.service import run_housekeeping
from services.auth.invitations import routes as invitations
from services.auth.keys import KeyRing, load_keyring
from services.auth.passwords import Passwords
from services.auth.providers import routes as providers
from services.auth.providers.protocol import Providers
from services.auth.sessions import routes as sessions
from services.auth.signups import routes as signups
from services.auth.state import AuthState
from services.pages import routes as pages
from shared.app import create_app
from shared.bodylimit import install_body_limit
from shared.ratelimit import RateLimiter
from shared.resources import Resources
from shared.settings import Settings

logger = logging.getLogger("blockbot.auth")
PURGE_INTERVAL_SECONDS = 3600.0


async def _purge_periodically(state: AuthState, interval: float) -> None:
    """Housekeeping now and then (stale sign-ups, dead sessions, spent one-time tokens).

    Failures are logged and retried at the next interval.
    """
    while True:
        try:
            await run_housekeeping(state)
        except Exception as error:
            logger.warning("housekeeping failed", extra={"error": repr(error)})
        await asyncio.sleep(interval)


def create_auth_app(
    settings: Settings,
    resources: Resources | None = None,
    *,
    keyring: KeyRing | None = None,
    purge_interval_seconds: float = PURGE_INTERVAL_SECONDS,
) -> FastAPI:
    """Build the auth app; refuses (SettingsError) to start in production without signing keys or
    TOTP encryption keys."""
    ring = keyring or load_keyring(settings)
    secret_box = load_secret_box(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        passwords = Passwords(settings)
        await passwords.start()
        state = AuthState(
            settings=settings,
            sessionmaker=res.sessionmaker,
            redis=res.redis,
            keyring=ring,
            passwords=passwords,
            limiter=RateLimiter(res.redis, settings, res.redis_guard),
            secret_box=secret_box,
        )
        app.state.auth = state
        purger = asyncio.create_task(_purge_periodically(state, purge_interval_seconds))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await drain()  # failed-login audits still running
            passwords.close()

    app = create_app(
        title="BlockBot auth",
        settings=settings,
        routers=[
            signups.router,
            accounts.router,
            sessions.router,
            invitations.router,
            discovery.router,
            factors.router,
            providers.router,
        ],
        service_lifespan=lifespan,
        resources=resources,
    )
    if settings.pages_enabled:
        app.include_router(pages.router)
    install_body_limit(app, settings.auth_max_body_bytes)
    app.state.providers = Providers(settings)
    return app
