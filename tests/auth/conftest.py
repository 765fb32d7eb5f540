"""Auth test fixtures: the real auth app over ASGI, emails read back from the real arq queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from services.auth.app import create_auth_app
from services.auth.keys import KeyRing
from shared.settings import Settings
from tests.auth.helpers import (
    GENEROUS,
    KEYRING,
    AuthApp,
)


@pytest.fixture(scope="session")
def start_auth(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`async with start_auth(**overrides) as auth:` runs a real auth app with its lifespan."""

    @asynccontextmanager
    async def start(keyring: KeyRing | None = KEYRING, **overrides: Any) -> AsyncIterator[AuthApp]:
        settings = make_settings("auth", **{**GENEROUS, **overrides})
        app = create_auth_app(settings, keyring=keyring)
        async with app.router.lifespan_context(app):
            yield AuthApp(app, settings)

    return start


@pytest.fixture(scope="session")
async def auth(start_auth: Callable[..., Any]) -> AsyncIterator[AuthApp]:
    async with start_auth() as running:
        yield running


@pytest.fixture
async def client(auth: AuthApp) -> AsyncIterator[httpx.AsyncClient]:
    async with auth.client() as c:
        yield c


@pytest.fixture(scope="session")
def admin_dsn(database: Any) -> str:
    dsn: str = database.admin_url
    return dsn
