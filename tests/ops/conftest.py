"""Operator-task fixtures: the admin command line as a real process, auth and api apps that
share its database, Redis and key prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from devstack.databases import MigratedDatabase
from shared.settings import Settings
from tests.api.helpers import Api, running
from tests.auth.helpers import KEYRING, auth_starter
from tests.ops.helpers import FAST_HASHING, AdminCli, public_keys_of


@pytest.fixture(scope="session")
def admin_cli(database: MigratedDatabase, redis_url: str, redis_prefix: str) -> AdminCli:
    return AdminCli(
        {
            "ENV": "test",
            "DATABASE_URL": database.admin_url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": redis_prefix,
            "BLOCKBOT_OPERATOR": "ops-alice",
            **FAST_HASHING,
        }
    )


@pytest.fixture(scope="session")
def start_auth(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`async with start_auth(**overrides) as auth:` the auth app of tests/auth, sharing the run's
    database, Redis and key prefix with the command line."""
    return auth_starter(make_settings)


@pytest.fixture(scope="session")
def start_api(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`async with start_api(**overrides) as api:` an api verifying the auth test keys."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Api]:
        values: dict[str, Any] = {
            "jwt_public_keys": public_keys_of(KEYRING),
            "ratelimit_org_per_hour": 1_000_000,
            "ratelimit_user_per_hour": 1_000_000,
            "ratelimit_user_endpoint_per_minute": 1_000_000,
        }
        values.update(overrides)
        async with running(make_settings("api", **values)) as api:
            yield api

    return start


@pytest.fixture(scope="session")
async def db_admin(database: MigratedDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to inspect what the commands did."""
    conn = await asyncpg.connect(database.admin_url)
    yield conn
    await conn.close()
