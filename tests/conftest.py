"""Test harness: real PostgreSQL and Redis, one database, role set and key prefix per run.

Servers are started here (embedded PostgreSQL, a local redis-server) on free ports unless
TEST_DATABASE_URL / TEST_REDIS_URL point at existing ones. Everything a run creates is named
with a random run id and dropped at the end, so runs never see each other's state.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.redis import LocalRedis
from migrations.roles import Roles
from shared.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = secrets.token_hex(4)


def with_database(url: str, database: str) -> str:
    """Replace the database name of a postgresql:// URL."""
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


def with_credentials(url: str, user: str, password: str) -> str:
    """Replace the user (and password) of a postgresql:// URL."""
    scheme, rest = url.split("://", 1)
    host = rest.split("@", 1)[-1]
    return f"{scheme}://{user}:{password}@{host}"


@dataclass(frozen=True)
class TestDatabase:
    """A migrated database of this run and the URLs each role connects with."""

    __test__ = False
    admin_url: str
    name: str
    roles: Roles
    auth_url: str
    api_url: str


def run_migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the migrate job as a real process, as a deployment would."""
    return subprocess.run(
        [sys.executable, "-m", "services.migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bbtest-{RUN_ID}-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_root: Path) -> Iterator[str]:
    """A PostgreSQL superuser URL: TEST_DATABASE_URL, or an embedded server of our own."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    server = EmbeddedPostgres(tmp_root / "pg").start()
    try:
        yield server.admin_url
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def redis_url(tmp_root: Path) -> Iterator[str]:
    """A Redis URL: TEST_REDIS_URL, or a redis-server of our own."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    server = LocalRedis(tmp_root / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"bbt:{RUN_ID}:"


def migrate_env(admin_url: str, database: str, prefix: str, passwords: dict[str, str]) -> dict[str, str]:
    return {
        "ENV": "test",
        "SERVICE_NAME": "migrate",
        "DATABASE_URL": with_database(admin_url, database),
        "REDIS_URL": "redis://127.0.0.1:1/0",  # unused by the migrate job
        "DB_ROLE_PREFIX": prefix,
        "AUTH_DB_PASSWORD": passwords["auth"],
        "API_DB_PASSWORD": passwords["api"],
    }


async def drop_database(admin_url: str, name: str, roles: Roles) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (roles.auth, roles.api, roles.owner):
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database(pg_admin_url: str) -> Iterator[TestDatabase]:
    """This run's database, migrated by the real migrate job, dropped with its roles afterwards."""
    import asyncio

    name = f"bbt_{RUN_ID}"
    prefix = f"bbt_{RUN_ID}"
    roles = Roles.for_prefix(prefix)
    passwords = {"auth": secrets.token_urlsafe(16), "api": secrets.token_urlsafe(16)}

    async def create() -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        result = run_migrate(migrate_env(pg_admin_url, name, prefix, passwords))
        assert result.returncode == 0, result.stderr + result.stdout
        db_url = with_database(pg_admin_url, name)
        yield TestDatabase(
            admin_url=db_url,
            name=name,
            roles=roles,
            auth_url=with_credentials(db_url, roles.auth, passwords["auth"]),
            api_url=with_credentials(db_url, roles.api, passwords["api"]),
        )
    finally:
        asyncio.run(drop_database(pg_admin_url, name, roles))


@pytest.fixture(scope="session")
def make_settings(
    database: TestDatabase, redis_url: str, redis_prefix: str, tmp_root: Path
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
        }
        values.update(overrides)
        return load_settings(**values)

    return build
