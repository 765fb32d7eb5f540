"""Operator-task fixtures: the admin command line as a real process, auth and api apps that
share its database, Redis and key prefix.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack.databases import MigratedDatabase
from services.auth.keys import KeyRing
from shared.access_tokens import b64url_encode, raw_public_bytes
from shared.settings import Settings
from tests.api.conftest import Api, running
from tests.auth.conftest import KEYRING, start_auth  # noqa: F401  (a fixture, re-exported)

ROOT = Path(__file__).resolve().parents[2]
FAST_HASHING = {"ARGON2_MEMORY_KIB": "8192", "ARGON2_TIME_COST": "1", "ARGON2_PARALLELISM": "1"}


@dataclass(frozen=True)
class AdminCli:
    """Runs `python -m services.admin` as the operator would, with the migrate job's URL."""

    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.admin", *args],
            cwd=ROOT,
            env={**os.environ, **self.env, **env},
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    async def __call__(
        self, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.run, *args, stdin=stdin, **env)


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


def public_keys_of(keyring: KeyRing) -> list[str]:
    return [b64url_encode(raw_public_bytes(key.public_key)) for key in keyring.keys]


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
