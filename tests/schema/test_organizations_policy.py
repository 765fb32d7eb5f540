"""The organizations tenant policy (migration 0013: the bound org read once per statement) keeps
tenant isolation exactly: another org's row is invisible and unchangeable, no org bound means
no row, and the single-statement bound read (`GET /me`) still sees its own org."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.databases import MigratedDatabase
from services.api.me.queries import caller
from shared.db import create_engine
from shared.settings import Settings
from tests.schema.helpers import in_tenant, make_org_with_user


@pytest.fixture
async def api_engine(make_settings: Callable[..., Settings]) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings("api"))
    yield engine
    await engine.dispose()


async def test_another_orgs_row_stays_invisible_and_unchangeable(
    admin: asyncpg.Connection, database: MigratedDatabase
) -> None:
    org_a, _ = await make_org_with_user(admin, "policy-a")
    org_b, _ = await make_org_with_user(admin, "policy-b")
    conn = await asyncpg.connect(database.api_url)
    try:
        for bound in (org_b, None, uuid.uuid4()):
            async with conn.transaction():
                if bound is not None:
                    await conn.execute("SELECT set_config('app.current_org_id', $1, true)", str(bound))
                assert await conn.fetch("SELECT id FROM organizations WHERE id = $1", org_a) == []
                seen = {r["id"] for r in await conn.fetch("SELECT id FROM organizations")}
                assert seen == ({org_b} if bound == org_b else set())
            status = await in_tenant(conn, bound, "UPDATE organizations SET name = 'x' WHERE id = $1", org_a)
            assert status == "UPDATE 0"
    finally:
        await conn.close()
    assert await admin.fetchval("SELECT name FROM organizations WHERE id = $1", org_a) == "policy-a"


async def test_the_one_statement_bound_read_sees_its_own_org_only(
    admin: asyncpg.Connection, api_engine: AsyncEngine
) -> None:
    org_a, user_a = await make_org_with_user(admin, "policy-read-a")
    org_b, _ = await make_org_with_user(admin, "policy-read-b")
    found = await caller(api_engine, org_a, user_a)
    assert found is not None and found.org_name == "policy-read-a"
    assert await caller(api_engine, org_b, user_a) is None
