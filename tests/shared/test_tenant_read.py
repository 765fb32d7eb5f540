"""Single-statement tenant binding (`shared.db.read_in_one_round_trip`): RLS still the boundary.

The binding lives in the statement's implicit transaction: nothing of it may survive on the
pooled connection for the next request, whatever the interleaving.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.databases import MigratedDatabase
from shared.db import create_engine, read_in_one_round_trip, tenant_bound
from shared.db_outage import unavailable_reason
from shared.settings import Settings

USERS = tenant_bound("SELECT id, org_id, email FROM users ORDER BY email")
ONE_USER = tenant_bound("SELECT id, org_id FROM users WHERE id = :id")


async def tenant_read(engine: AsyncEngine, org: uuid.UUID, statement, params) -> list[dict[str, Any]]:
    return [dict(r.items()) for r in await read_in_one_round_trip(engine, statement, params, org_id=org)]


@pytest.fixture
async def one_connection_engine(make_settings: Callable[..., Settings]) -> AsyncIterator[AsyncEngine]:
    """The api role's engine with exactly one pooled connection (not pinged, as every engine)."""
    engine = create_engine(make_settings("api", database_pool_size=1, database_max_overflow=0))
    yield engine
    await engine.dispose()


async def _org_with_users(admin: asyncpg.Connection, count: int) -> tuple[uuid.UUID, set[uuid.UUID]]:
    org = await admin.fetchval("INSERT INTO organizations (name) VALUES ('t') RETURNING id")
    users = set()
    for _ in range(count):
        users.add(
            await admin.fetchval(
                "INSERT INTO users (org_id, email, name, role) VALUES ($1, $2, 'n', 'member') RETURNING id",
                org,
                f"{uuid.uuid4().hex}@example.com",
            )
        )
    return org, users


@pytest.fixture
async def admin(database: MigratedDatabase) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.admin_url)
    yield conn
    await conn.close()


async def test_a_bound_read_sees_its_org_only_and_leaves_nothing_bound(one_connection_engine, admin):
    org_a, users_a = await _org_with_users(admin, 3)
    org_b, users_b = await _org_with_users(admin, 2)

    rows_a = await tenant_read(one_connection_engine, org_a, USERS, {})
    rows_b = await tenant_read(one_connection_engine, org_b, USERS, {})
    assert {r["id"] for r in rows_a} == users_a and {r["org_id"] for r in rows_a} == {org_a}
    assert {r["id"] for r in rows_b} == users_b
    # A user of the other org, asked for by id: RLS hides it (the binding came first).
    assert await tenant_read(one_connection_engine, org_a, ONE_USER, {"id": next(iter(users_b))}) == []

    # The same (only) pooled connection afterwards: no tenant, so RLS shows nothing.
    async with one_connection_engine.connect() as conn:
        setting = (await conn.execute(text("SELECT current_setting('app.current_org_id', true)"))).scalar()
        visible = (await conn.execute(text("SELECT count(*) FROM users"))).scalar()
    assert setting in (None, "")
    assert visible == 0


async def test_no_tenant_leaks_between_concurrent_requests_on_one_pooled_connection(
    one_connection_engine, admin
):
    """200 interleaved reads of two orgs plus unbound reads, all through ONE connection."""
    org_a, users_a = await _org_with_users(admin, 2)
    org_b, users_b = await _org_with_users(admin, 3)
    expected = {org_a: users_a, org_b: users_b}

    async def bound(org: uuid.UUID) -> tuple[uuid.UUID, set[uuid.UUID]]:
        return org, {r["id"] for r in await tenant_read(one_connection_engine, org, USERS, {})}

    async def unbound() -> int:
        async with one_connection_engine.connect() as conn:
            count = (await conn.execute(text("SELECT count(*) FROM users"))).scalar()
            await conn.commit()
        return int(count or 0)

    reads = [bound(org_a if i % 2 else org_b) for i in range(200)]
    results = await asyncio.gather(*reads, *(unbound() for _ in range(20)))
    for result in results[:200]:
        assert isinstance(result, tuple)
        org, seen = result
        assert seen == expected[org]
    assert results[200:] == [0] * 20


async def test_a_read_on_a_connection_the_server_dropped_is_retried_once(one_connection_engine, admin):
    org, users = await _org_with_users(admin, 1)
    assert {r["id"] for r in await tenant_read(one_connection_engine, org, USERS, {})} == users
    killed = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'api' AND pid <> pg_backend_pid()"
    )
    assert killed >= 1
    assert {r["id"] for r in await tenant_read(one_connection_engine, org, USERS, {})} == users


async def test_concurrent_reads_beyond_the_pool_give_every_connection_back_cleanly(
    make_settings: Callable[..., Settings], admin, caplog
):
    """A pool of one plus overflow, 60 reads at once: every read answers, and the overflow
    connections are closed properly (no MissingGreenlet, nothing logged by the pool)."""
    org, users = await _org_with_users(admin, 2)
    engine = create_engine(make_settings("api", database_pool_size=1, database_max_overflow=5))
    try:
        with caplog.at_level(logging.WARNING):
            results = await asyncio.gather(*(tenant_read(engine, org, USERS, {}) for _ in range(60)))
    finally:
        await engine.dispose()
    assert all({r["id"] for r in rows} == users for rows in results)
    logged = [r for r in caplog.records if r.name.startswith("sqlalchemy") or "greenlet" in r.getMessage()]
    assert logged == [], [r.getMessage() for r in logged]


async def test_connections_left_mid_protocol_are_discarded_and_the_read_is_a_dependency_outage(
    one_connection_engine: AsyncEngine, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server going away can leave idle pooled connections in the middle of the protocol,
    which asyncpg reports with a client error (not a PostgreSQL one) when they are next used.
    Two such connections in a row: each is discarded, and the read fails as a database outage
    (the handlers' 503), never as an unexpected error (a 500); the next read works again."""
    org, users = await _org_with_users(admin, 1)
    assert {r["id"] for r in await tenant_read(one_connection_engine, org, USERS, {})} == users
    calls = 0

    async def mid_protocol(self: asyncpg.Connection, *args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        raise asyncpg.exceptions._base.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        )

    with monkeypatch.context() as patched:
        patched.setattr(asyncpg.Connection, "fetch", mid_protocol)
        with pytest.raises(DBAPIError) as raised:
            await tenant_read(one_connection_engine, org, USERS, {})
    assert calls == 2
    assert unavailable_reason(raised.value) == "disconnected"
    assert {r["id"] for r in await tenant_read(one_connection_engine, org, USERS, {})} == users
