"""Databases for the local stack, the tests and the benchmarks: URLs, the migrate job, throwaways.

A throwaway database comes with its own role set (`<prefix>_owner/_auth/_api`), created by the
real migrate job and dropped with the database, so concurrent runs never see each other.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import asyncpg

from devstack.paths import run_from_root
from migrations.roles import Roles


def url_with(
    url: str, *, user: str | None = None, password: str | None = None, database: str | None = None
) -> str:
    """Replace the credentials and/or the database of a postgresql:// URL."""
    scheme, rest = url.split("://", 1)
    creds, _, hostpart = rest.rpartition("@")
    if database is not None:
        base, _, query = hostpart.partition("?")
        host = base.split("/", 1)[0]
        hostpart = f"{host}/{database}" + (f"?{query}" if query else "")
    if user is not None:
        creds = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"{scheme}://{creds}@{hostpart}" if creds else f"{scheme}://{hostpart}"


def migrate_env(admin_url: str, database: str, prefix: str, passwords: Mapping[str, str]) -> dict[str, str]:
    """The migrate job's environment for `database` on the server of `admin_url`."""
    return {
        "ENV": "test",
        "SERVICE_NAME": "migrate",
        "DATABASE_URL": url_with(admin_url, database=database),
        "REDIS_URL": "redis://127.0.0.1:1/0",  # unused by the migrate job
        "DB_ROLE_PREFIX": prefix,
        "AUTH_DB_PASSWORD": passwords["auth"],
        "API_DB_PASSWORD": passwords["api"],
    }


def run_migrate(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the migrate job as a real process, as a deployment would."""
    return run_from_root([sys.executable, "-m", "services.migrate"], env={**os.environ, **env}, timeout=120)


@dataclass(frozen=True)
class MigratedDatabase:
    """A migrated throwaway database and the URL each role connects with."""

    admin_url: str  # the server's administrator, connected to this database
    name: str
    roles: Roles
    auth_url: str
    api_url: str


async def _execute(admin_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def migrated_database(server_admin_url: str, run_id: str) -> Iterator[MigratedDatabase]:
    """Create `bbt_<run_id>`, migrate it with its own roles, and drop database and roles after."""
    name = prefix = f"bbt_{run_id}"
    roles = Roles.for_prefix(prefix)
    passwords = {"auth": secrets.token_urlsafe(16), "api": secrets.token_urlsafe(16)}
    asyncio.run(_execute(server_admin_url, f'CREATE DATABASE "{name}"'))
    try:
        result = run_migrate(migrate_env(server_admin_url, name, prefix, passwords))
        if result.returncode != 0:
            raise RuntimeError("migrate job failed:\n" + result.stderr + result.stdout)
        admin_url = url_with(server_admin_url, database=name)
        yield MigratedDatabase(
            admin_url=admin_url,
            name=name,
            roles=roles,
            auth_url=url_with(admin_url, user=roles.auth, password=passwords["auth"]),
            api_url=url_with(admin_url, user=roles.api, password=passwords["api"]),
        )
    finally:
        asyncio.run(
            _execute(
                server_admin_url,
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                *(f'DROP ROLE IF EXISTS "{role}"' for role in (roles.auth, roles.api, roles.owner)),
            )
        )
