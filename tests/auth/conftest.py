"""Auth test fixtures: the real auth app over ASGI, emails read back from the real arq queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from tests.auth.helpers import AuthApp, auth_starter


@pytest.fixture(scope="session")
def start_auth(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`async with start_auth(**overrides) as auth:` runs a real auth app with its lifespan."""
    return auth_starter(make_settings)


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
