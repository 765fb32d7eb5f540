"""The purge functions (migration 0012): bounded, dead rows only, the auth role's alone."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg
import pytest

from devstack.databases import MigratedDatabase
from tests.auth.helpers import AuthApp, admin
from tests.auth.housekeeping.test_service import make_org, quiet

__all__ = ["quiet"]  # the fixture: no startup purge meanwhile

PURGE_SESSIONS = "SELECT * FROM housekeeping_purge_sessions(now(), $1)"
PURGE_TOKENS = "SELECT housekeeping_purge_one_time_tokens(now(), $1)"


async def _connect(url: str) -> Any:
    return await asyncpg.connect(url)


async def test_a_call_deletes_at_most_its_limit_oldest_first(
    auth: AuthApp, database: MigratedDatabase, admin_dsn: str
) -> None:
    async with admin(admin_dsn) as conn:
        org = await make_org(conn)
        # Ten sessions dead before any other test's: the first of any batch.
        await conn.execute(
            "INSERT INTO sessions (org_id, user_id, token_hash, expires_at)"
            " SELECT $1, $2, sha256(($3 || n)::bytea), timestamptz '2000-01-01' + make_interval(secs => n)"
            " FROM generate_series(1, 10) n",
            org.id,
            org.user,
            secrets.token_hex(8),
        )
    conn = await _connect(database.auth_url)
    try:
        row = await conn.fetchrow(PURGE_SESSIONS, 3)
        assert row is not None and row["sessions"] == 3
        for limit in (0, -1, 10_001):
            with pytest.raises(asyncpg.InvalidParameterValueError):
                await conn.fetchrow(PURGE_SESSIONS, limit)
            with pytest.raises(asyncpg.InvalidParameterValueError):
                await conn.fetchval(PURGE_TOKENS, limit)
        # A cutoff in the future is the present: a live session is never dead.
        await conn.fetchrow("SELECT * FROM housekeeping_purge_sessions('infinity', 10000)")
    finally:
        await conn.close()
    async with admin(admin_dsn) as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE org_id = $1 AND expires_at < '2001-01-01'", org.id
        )
        assert left == 0  # the "infinity" call took the other seven
        assert await conn.fetchval("SELECT count(*) FROM sessions WHERE id = $1", org.sessions["live"]) == 1


async def test_the_api_role_may_not_purge(database: MigratedDatabase, admin_dsn: str) -> None:
    async with admin(admin_dsn) as conn:
        org = await make_org(conn)
    conn = await _connect(database.api_url)
    try:
        for statement in (PURGE_SESSIONS, PURGE_TOKENS):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(statement, 10)
    finally:
        await conn.close()
    async with admin(admin_dsn) as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM sessions WHERE id = $1", org.sessions["expired long ago"]
            )
            == 1
        )


async def test_the_cutoff_setting_opens_nothing_to_the_runtime_roles(
    database: MigratedDatabase, admin_dsn: str
) -> None:
    """The purge policies are the owner's: the auth and api roles setting the purge cutoff
    themselves still see and delete only what their own policies allow."""
    async with admin(admin_dsn) as conn:
        org = await make_org(conn)
    dead = org.sessions["revoked long ago"]
    for url in (database.auth_url, database.api_url):
        conn = await _connect(url)
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT set_config('app.housekeeping_purge_before', now()::text, true),"
                    " set_config('app.current_org_id', $1, true)",
                    str(uuid.uuid4()),
                )
                # The auth role reads one-time tokens across orgs (its lookup policy); the api none.
                visible = await conn.fetchval(
                    "SELECT count(*) FROM one_time_tokens WHERE org_id = $1", org.id
                )
                assert visible == (4 if url == database.auth_url else 0)
                if url == database.auth_url:
                    assert await conn.execute("DELETE FROM sessions WHERE id = $1", dead) == "DELETE 0"
        finally:
            await conn.close()
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM sessions WHERE id = $1", dead) == 1
