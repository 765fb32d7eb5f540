"""Connections as the superuser (to seed and check) and as each runtime role (what RLS and the
grants are tested against)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from devstack.databases import MigratedDatabase


@pytest.fixture
async def admin(database: MigratedDatabase) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.admin_url)
    yield conn
    await conn.close()


@pytest.fixture
async def api_conn(database: MigratedDatabase) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.api_url)
    yield conn
    await conn.close()


@pytest.fixture
async def auth_conn(database: MigratedDatabase) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.auth_url)
    yield conn
    await conn.close()
