"""Housekeeping across orgs: dead rows of every org go, live and recent ones stay, in batches."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from services.auth.housekeeping.service import (
    BatchSize,
    purge_dead_sessions,
    purge_spent_tokens,
    run_housekeeping,
)
from tests.auth.helpers import AuthApp, admin

LONG_AGO = "now() - interval '400 days'"


@pytest.fixture(autouse=True)
async def quiet(auth: AuthApp) -> None:
    """The auth app runs a housekeeping pass as it starts, on this event loop: wait until its
    task sleeps until the next pass, so the purges these tests count are their own."""
    for _ in range(1200):
        passes = [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "_purge_periodically"]  # type: ignore[union-attr]
        if all(getattr(t.get_coro().cr_await, "__name__", "") == "sleep" for t in passes):  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)


@dataclass
class Org:
    id: uuid.UUID
    user: uuid.UUID
    sessions: dict[str, uuid.UUID]
    tokens: dict[str, uuid.UUID]


async def make_org(conn: Any) -> Org:
    """An org with one user, a session and a one-time token of each kind (dead long ago, dead
    recently, live); the long-dead sessions have retired tokens. One transaction: a purge
    running meanwhile sees all of it or nothing."""
    async with conn.transaction():
        return await _make_org(conn)


async def _make_org(conn: Any) -> Org:
    org = uuid.uuid4()
    await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Housekeeping')", org)
    user = await conn.fetchval(
        "INSERT INTO users (org_id, email, name, role) VALUES ($1, $2, 'U', 'owner') RETURNING id",
        org,
        f"hk-{secrets.token_hex(6)}@example.com",
    )
    sessions = {}
    for label, expires, revoked in (
        ("expired long ago", LONG_AGO, "NULL"),
        ("revoked long ago", "now() + interval '1 day'", LONG_AGO),
        ("revoked just now", "now() + interval '1 day'", "now()"),
        ("live", "now() + interval '1 day'", "NULL"),
    ):
        sessions[label] = await conn.fetchval(
            "INSERT INTO sessions (org_id, user_id, token_hash, expires_at, revoked_at, created_at)"
            f" VALUES ($1, $2, $3, {expires}, {revoked}, now() - interval '500 days') RETURNING id",
            org,
            user,
            secrets.token_bytes(32),
        )
    for label in ("expired long ago", "revoked long ago", "live"):
        await conn.execute(
            "INSERT INTO session_retired_tokens (token_hash, session_id, org_id, retired_at)"
            f" VALUES ($1, $2, $3, {LONG_AGO})",
            secrets.token_bytes(32),
            sessions[label],
            org,
        )
    tokens = {}
    for label, expires, consumed in (
        ("expired long ago", LONG_AGO, "NULL"),
        ("consumed long ago", "now() + interval '1 hour'", LONG_AGO),
        ("consumed just now", "now() + interval '1 hour'", "now()"),
        ("live", "now() + interval '1 hour'", "NULL"),
    ):
        tokens[label] = await conn.fetchval(
            "INSERT INTO one_time_tokens (org_id, user_id, purpose, token_hash, expires_at, consumed_at)"
            f" VALUES ($1, $2, 'magic_link', $3, {expires}, {consumed}) RETURNING id",
            org,
            user,
            secrets.token_bytes(32),
        )
    return Org(org, user, sessions, tokens)


async def test_every_orgs_dead_rows_go_and_live_ones_stay(auth: AuthApp, admin_dsn: str) -> None:
    async with admin(admin_dsn) as conn:
        orgs = [await make_org(conn) for _ in range(5)]

    purged = await run_housekeeping(auth.state)
    assert purged.sessions >= 10
    assert purged.retired_tokens >= 10
    assert purged.one_time_tokens >= 10

    async with admin(admin_dsn) as conn:
        for org in orgs:
            sessions = {
                r["id"] for r in await conn.fetch("SELECT id FROM sessions WHERE org_id = $1", org.id)
            }
            assert sessions == {org.sessions["revoked just now"], org.sessions["live"]}
            retired = await conn.fetch(
                "SELECT session_id FROM session_retired_tokens WHERE org_id = $1", org.id
            )
            assert [r["session_id"] for r in retired] == [org.sessions["live"]]
            tokens = {
                r["id"] for r in await conn.fetch("SELECT id FROM one_time_tokens WHERE org_id = $1", org.id)
            }
            assert tokens == {org.tokens["consumed just now"], org.tokens["live"]}


async def test_a_purge_goes_batch_by_batch_until_nothing_is_left(auth: AuthApp, admin_dsn: str) -> None:
    async with admin(admin_dsn) as conn:
        orgs = [await make_org(conn) for _ in range(4)]
    seconds: list[float] = []
    sessions, retired = await purge_dead_sessions(auth.state, batch=3, seconds=seconds)
    assert sessions >= 8 and retired >= 8
    # At most 3 a batch, so at least three batches (the last one short).
    assert len(seconds) >= 3
    tokens: list[float] = []
    assert await purge_spent_tokens(auth.state, batch=2, seconds=tokens) >= 8
    assert len(tokens) >= 4
    async with admin(admin_dsn) as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE org_id = ANY($1)", [org.id for org in orgs]
        )
        assert left == 2 * len(orgs)


def test_the_batch_size_follows_the_time_a_batch_takes() -> None:
    size = BatchSize(rows=400, ceiling=1000, target_seconds=0.05)
    size.took(0.2)  # four times too slow: a quarter of the rows
    assert size.rows == 100
    size.took(0.001)  # far too fast: at most doubled
    assert size.rows == 200
    for _ in range(10):
        size.took(0.001)
    assert size.rows == 1000  # never above the ceiling
    size.took(100.0)
    assert size.rows == 10  # never below the floor
    assert BatchSize(ceiling=1).rows == 1
