"""Refresh rules at the edges of the one-statement rotation: concurrency, the successor kept
in the row, refused sessions left as they were, no tenant binding left on a pooled connection."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from prometheus_client import REGISTRY

from shared.access_tokens import b64url_encode, verify_access_token
from shared.opaque_tokens import decode_token
from tests.auth.helpers import KEYRING, AuthApp, admin, do_refresh, refresh_cookie, signup


def _refreshes(result: str) -> float:
    return REGISTRY.get_sample_value("auth_refresh_total", {"result": result}) or 0.0


def _digest(token: str) -> bytes:
    raw = decode_token(token)
    assert raw is not None
    return hashlib.sha256(raw).digest()


async def _session_of(client: httpx.AsyncClient, auth: AuthApp) -> tuple[str, str]:
    """A new account's session: its id and refresh token."""
    _, verified = await signup(client, auth.settings)
    claims = verify_access_token(verified.json()["access_token"], KEYRING.public_keys, auth.settings)
    return str(claims.session_id), refresh_cookie(verified)


async def test_concurrent_refreshes_of_one_token_rotate_it_once(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    sid, t0 = await _session_of(client, auth)
    clients = [auth.client() for _ in range(6)]
    rotated, replayed = _refreshes("rotated"), _refreshes("grace_replay")
    try:
        results = await asyncio.gather(*(do_refresh(c, t0) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    assert [r.status_code for r in results] == [200] * 6
    (t1,) = {refresh_cookie(r) for r in results}
    # One rotation; the five others were grace replays of the token it retired (no reuse).
    assert _refreshes("rotated") == rotated + 1
    assert _refreshes("grace_replay") == replayed + 5
    async with admin(admin_dsn) as conn:
        row = await conn.fetchrow(
            "SELECT generation, token_hash, previous_token_hash, revoked_at FROM sessions WHERE id = $1",
            sid,
        )
    assert row is not None
    assert row["generation"] == 1  # one winner; the others got its successor
    assert bytes(row["token_hash"]) == _digest(t1)
    assert bytes(row["previous_token_hash"]) == _digest(t0)
    assert row["revoked_at"] is None


async def test_the_row_keeps_the_successor_sealed(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    sid, t0 = await _session_of(client, auth)
    t1 = refresh_cookie(await do_refresh(client, t0))
    async with admin(admin_dsn) as conn:
        sealed = await conn.fetchval("SELECT successor_sealed FROM sessions WHERE id = $1", sid)
    assert sealed is not None and len(sealed) == 32
    assert bytes(sealed) != decode_token(t1)  # not the successor's raw bytes
    # What the database holds is no refresh token: presented as one, it is refused.
    assert (await do_refresh(client, b64url_encode(bytes(sealed)))).status_code == 401
    # The previous token within the grace window still gets the successor, from the row.
    replay = await do_refresh(client, t0)
    assert replay.status_code == 200
    assert refresh_cookie(replay) == t1


@pytest.mark.parametrize(
    "refusal",
    [
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1",
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1",
        "UPDATE users SET disabled_at = now() FROM sessions s WHERE s.id = $1 AND users.id = s.user_id",
    ],
    ids=["revoked", "expired", "user-disabled"],
)
async def test_a_refused_session_is_not_rotated(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str, refusal: str
) -> None:
    sid, t0 = await _session_of(client, auth)
    async with admin(admin_dsn) as conn:
        await conn.execute(refusal, sid)
    assert (await do_refresh(client, t0)).status_code == 401
    async with admin(admin_dsn) as conn:
        row = await conn.fetchrow("SELECT generation, token_hash FROM sessions WHERE id = $1", sid)
    assert row is not None
    assert row["generation"] == 0 and bytes(row["token_hash"]) == _digest(t0)


async def test_a_refresh_leaves_no_tenant_bound_on_its_connection(start_auth: object) -> None:
    """The rotation binds the tenant inside its implicit transaction; the next user of the same
    pooled connection sees no tenant (RLS shows it nothing)."""
    async with start_auth(database_pool_size=1, database_max_overflow=0) as one, one.client() as c:  # type: ignore[operator]
        _, t0 = await _session_of(c, one)
        assert (await do_refresh(c, t0)).status_code == 200
        engine = one.state.sessionmaker.kw["bind"]
        async with engine.connect() as conn:
            bound = await conn.exec_driver_sql("SELECT current_setting('app.current_org_id', true)")
            assert bound.scalar() in (None, "")
            visible = await conn.exec_driver_sql("SELECT count(*) FROM organizations")
            assert visible.scalar() == 0
