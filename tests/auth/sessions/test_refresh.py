"""Refresh-token rotation, the reuse grace window, reuse detection and serialized refreshes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prometheus_client import REGISTRY

from shared.access_tokens import is_session_revoked, verify_access_token
from tests.auth.helpers import (
    KEYRING,
    PREFIX,
    AuthApp,
    admin,
    bearer,
    do_refresh,
    refresh_cookie,
    signed_in,
    signup,
)


async def test_rotation_on_every_use(auth: AuthApp, client: httpx.AsyncClient) -> None:
    verified, t0 = await signed_in(client, auth.settings)
    first = await do_refresh(client, t0)
    assert first.status_code == 200
    t1 = refresh_cookie(first)
    assert t1 != t0
    second = await do_refresh(client, t1)
    assert second.status_code == 200
    t2 = refresh_cookie(second)
    assert t2 not in (t0, t1)
    claims = verify_access_token(second.json()["access_token"], KEYRING.public_keys, auth.settings)
    first_claims = verify_access_token(verified.json()["access_token"], KEYRING.public_keys, auth.settings)
    assert claims.session_id == first_claims.session_id  # same family
    # No cookie, or garbage: 401.
    client.cookies.clear()
    assert (await client.post(f"{PREFIX}/refresh")).status_code == 401
    assert (await do_refresh(client, "garbage")).status_code == 401


async def test_concurrent_refreshes_get_the_same_successor(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, t0 = await signed_in(client, auth.settings)
    async with auth.client() as a, auth.client() as b:
        results = await asyncio.gather(do_refresh(a, t0), do_refresh(b, t0))
    assert [r.status_code for r in results] == [200, 200]
    successors = {refresh_cookie(r) for r in results}
    assert len(successors) == 1
    (t1,) = successors
    assert t1 != t0
    # Still one family, one current token: the successor rotates normally.
    assert (await do_refresh(client, t1)).status_code == 200


async def test_previous_token_within_grace_returns_current_successor(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, t0 = await signed_in(client, auth.settings)
    t1 = refresh_cookie(await do_refresh(client, t0))
    replay = await do_refresh(client, t0)  # a lost response, retried
    assert replay.status_code == 200
    assert refresh_cookie(replay) == t1


def _counter(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_reuse_after_grace_revokes_the_session(start_auth: Any, admin_dsn: str) -> None:
    async with start_auth(refresh_reuse_grace_seconds=1) as strict, strict.client() as client:
        _, verified = await signup(client, strict.settings)
        access = verified.json()["access_token"]
        sid = verify_access_token(access, KEYRING.public_keys, strict.settings).session_id
        t0 = refresh_cookie(verified)
        rotated = await do_refresh(client, t0)
        t1 = refresh_cookie(rotated)
        assert rotated.status_code == 200
        await asyncio.sleep(1.3)
        before = _counter("auth_refresh_total", result="reuse_detected")

        reused = await do_refresh(client, t0)
        assert reused.status_code == 401
        assert _counter("auth_refresh_total", result="reuse_detected") == before + 1
        # The whole family is dead: the current token too, and every access token of the sid.
        assert (await do_refresh(client, t1)).status_code == 401
        assert await is_session_revoked(strict.state.redis, strict.settings, sid)
        for response in (verified, rotated):
            got = await client.get(f"{PREFIX}/sessions", headers=bearer(response))
            assert got.status_code == 401
        async with admin(admin_dsn) as conn:
            row = await conn.fetchrow("SELECT revoked_at, revoked_reason FROM sessions WHERE id = $1", sid)
            audit = await conn.fetchrow(
                "SELECT action, target_id, request_id FROM audit_log WHERE target_id = $1"
                " AND action = 'session.refresh_reuse_detected'",
                str(sid),
            )
        assert row is not None
        assert row["revoked_at"] is not None
        assert row["revoked_reason"] == "refresh_reuse"
        assert audit is not None
        assert audit["request_id"] == reused.headers["x-request-id"]


async def test_older_token_is_reuse_even_inside_grace(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, t0 = await signed_in(client, auth.settings)
    t1 = refresh_cookie(await do_refresh(client, t0))
    t2 = refresh_cookie(await do_refresh(client, t1))
    # t0 is two generations back: not "the previous token", so it is reuse.
    assert (await do_refresh(client, t0)).status_code == 401
    assert (await do_refresh(client, t2)).status_code == 401


async def test_expired_refresh_token_refused(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, verified = await signup(client, auth.settings)
    sid = verify_access_token(verified.json()["access_token"], KEYRING.public_keys, auth.settings).session_id
    async with admin(admin_dsn) as conn:
        await conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1", sid)
    assert (await do_refresh(client, refresh_cookie(verified))).status_code == 401
