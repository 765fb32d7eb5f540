"""Fixtures for api tests: orgs and users seeded as the superuser, tokens minted with a test key.

The signing key exists only here: the app under test gets its PUBLIC half in JWT_PUBLIC_KEYS,
exactly as in production where the auth service holds the private key.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import create_engine, create_sessionmaker
from shared.settings import Settings
from tests.api.helpers import (
    HIGH,
    Api,
    Minter,
    Org,
    add_member,
    running,
)


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def minter(make_settings: Callable[..., Settings], signing_key: Ed25519PrivateKey) -> Minter:
    return Minter(make_settings("api"), signing_key)


@pytest.fixture
def api_settings(
    make_settings: Callable[..., Settings], minter: Minter, redis_prefix: str
) -> Callable[..., Settings]:
    """Api settings with the test public key, a private Redis prefix and high limits."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "jwt_public_keys": [minter.public_b64],
            "redis_key_prefix": f"{redis_prefix}api{secrets.token_hex(3)}:",
            "ratelimit_org_per_hour": HIGH,
            "ratelimit_user_per_hour": HIGH,
            "ratelimit_user_endpoint_per_minute": HIGH,
        }
        values.update(overrides)
        return make_settings("api", **values)

    return build


@pytest.fixture
async def api(api_settings: Callable[..., Settings]) -> AsyncIterator[Api]:
    async with running(api_settings()) as value:
        yield value


@pytest.fixture
def client(api: Api) -> httpx.AsyncClient:
    return api.client


@pytest.fixture(scope="session")
async def admin(database: Any) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection (RLS does not apply) to seed and to check the database."""
    conn = await asyncpg.connect(database.admin_url)
    yield conn
    await conn.close()


@pytest.fixture
def make_org(admin: asyncpg.Connection) -> Callable[..., Any]:
    """Create an org with members, e.g. `await make_org("owner", "admin", "member")`."""

    async def build(*roles: str, name: str | None = None) -> Org:
        org_name = name or f"Org {secrets.token_hex(3)}"
        org_id = await admin.fetchval("INSERT INTO organizations (name) VALUES ($1) RETURNING id", org_name)
        org = Org(org_id, org_name)
        for role in roles or ("owner",):
            await add_member(admin, org, role)
        return org

    return build


@pytest.fixture
async def sessions(api_settings: Callable[..., Settings]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on the api role's engine, for tests that call services directly."""
    engine = create_engine(api_settings())
    yield create_sessionmaker(engine)
    await engine.dispose()
