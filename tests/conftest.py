"""Test harness: real PostgreSQL and Redis, one database, role set and key prefix per run.

Servers are started here (embedded PostgreSQL, a local redis-server) on free ports unless
TEST_DATABASE_URL / TEST_REDIS_URL point at existing ones. Everything a run creates is named
with a random run id and dropped at the end, so runs never see each other's state.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.databases import MigratedDatabase, migrated_database
from devstack.postgres import EmbeddedPostgres
from devstack.redis import LocalRedis
from shared.redis import create_redis
from shared.settings import Settings, load_settings

RUN_ID = secrets.token_hex(4)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bbtest-{RUN_ID}-") as d:
        yield Path(d)


def _given_or_own(variable: str, start: Callable[[], str], stop: Callable[[], None]) -> Iterator[str]:
    """The URL in the environment `variable`, else that of a server started for the run."""
    given = os.environ.get(variable)
    if given:
        yield given
        return
    url = start()
    try:
        yield url
    finally:
        stop()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_root: Path) -> Iterator[str]:
    """A PostgreSQL superuser URL: TEST_DATABASE_URL, or an embedded server of our own."""
    server = EmbeddedPostgres(tmp_root / "pg")
    yield from _given_or_own("TEST_DATABASE_URL", lambda: server.start().admin_url, server.destroy)


@pytest.fixture(scope="session")
def redis_url(tmp_root: Path) -> Iterator[str]:
    """A Redis URL: TEST_REDIS_URL, or a redis-server of our own."""
    server = LocalRedis(tmp_root / "redis")
    yield from _given_or_own("TEST_REDIS_URL", lambda: server.start().url, server.stop)


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"bbt:{RUN_ID}:"


@pytest.fixture(scope="session")
def database(pg_admin_url: str) -> Iterator[MigratedDatabase]:
    """This run's database, migrated by the real migrate job, dropped with its roles afterwards."""
    with migrated_database(pg_admin_url, RUN_ID) as db:
        yield db


@pytest.fixture(scope="session")
def make_settings(
    database: MigratedDatabase, redis_url: str, redis_prefix: str, tmp_root: Path
) -> Callable[..., Settings]:
    """Settings for one service role (`auth`, `api`, `admin`), with overrides as field values."""

    def build(role: str = "api", **overrides: Any) -> Settings:
        url = {"auth": database.auth_url, "api": database.api_url, "admin": database.admin_url}[role]
        values: dict[str, Any] = {
            "env": "test",
            "service_name": role,
            "database_url": url,
            "redis_url": redis_url,
            "redis_key_prefix": redis_prefix,
            "cookie_secure": False,
            "dev_outbox_dir": tmp_root / "outbox",
            "argon2_memory_kib": 8_192,  # fast hashing in tests; production parameters in settings
            "argon2_time_cost": 1,
            "argon2_parallelism": 1,
            # On a loaded machine redis-server itself may wait 150 ms (the production bound) for
            # a CPU, and a shed request is not what most tests test; the Redis fault tests set
            # the production bound (or a dead Redis) explicitly.
            "redis_call_timeout_ms": 2_000,
            # Likewise for the database pool and statements; the outage tests use the defaults.
            "database_pool_timeout_seconds": 60,
            "database_connect_timeout_seconds": 60,
            "database_command_timeout_seconds": 60,
        }
        return load_settings(**{**values, **overrides})

    return build


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every access-token signature verification (PyJWT decode) made while the test runs."""
    import jwt

    calls: list[str] = []
    original = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return original(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return calls


@pytest.fixture
async def redis_settings(make_settings: Callable[..., Settings], redis_prefix: str) -> Settings:
    """Settings whose Redis key prefix is this test's own, on the run's server."""
    return make_settings("api", redis_key_prefix=f"{redis_prefix}{secrets.token_hex(3)}:")


@pytest.fixture
async def redis_client(redis_settings: Settings) -> AsyncIterator[object]:
    """A client of the run's Redis server (shared.redis.create_redis) with its own key prefix."""
    client = create_redis(redis_settings)
    yield client
    await client.aclose()
