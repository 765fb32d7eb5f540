"""Housekeeping: dead sessions (with their retired tokens) and spent one-time tokens go away."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from services.auth.housekeeping.service import purge_dead_sessions, run_housekeeping
from tests.auth.helpers import AuthApp, admin, do_refresh, refresh_cookie, signup
from tests.auth.service_calls import ids_of


async def _session_of(conn: Any, email: str) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1"
            " ORDER BY s.created_at",
            email,
        )
    )


async def _two_sessions(client: httpx.AsyncClient, auth: AuthApp) -> tuple[str, str]:
    """A user with a rotated session (so it has session_retired_tokens rows)."""
    email, verified = await signup(client, auth.settings)
    token = refresh_cookie(verified)
    for _ in range(3):
        response = await do_refresh(client, token)
        assert response.status_code == 200, response.text
        token = refresh_cookie(response)
    return email, token


async def test_housekeeping_purges_dead_sessions_and_spent_tokens(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    # Two organizations: each is purged under its own tenant context.
    old_revoked, _ = await _two_sessions(client, auth)
    old_expired, _ = await _two_sessions(client, auth)
    recent_revoked, _ = await _two_sessions(client, auth)
    live, live_token = await _two_sessions(client, auth)
    ttl = auth.settings.refresh_token_ttl_seconds
    async with admin(admin_dsn) as conn:
        sessions = {
            e: (await _session_of(conn, e))[0]["id"] for e in (old_revoked, old_expired, recent_revoked, live)
        }
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM session_retired_tokens WHERE session_id = $1",
                sessions[old_revoked],
            )
            >= 1
        )
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() - make_interval(secs => $2 + 60),"
            " revoked_reason = 'logout' WHERE id = $1",
            sessions[old_revoked],
            ttl,
        )
        await conn.execute(
            "UPDATE sessions SET created_at = now() - make_interval(secs => 2 * $2 + 60),"
            " expires_at = now() - make_interval(secs => $2 + 60) WHERE id = $1",
            sessions[old_expired],
            ttl,
        )
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() - interval '1 hour' WHERE id = $1",
            sessions[recent_revoked],
        )
        # One-time tokens of the live user: consumed 2 days ago, expired 2 days ago, consumed
        # an hour ago, and one still valid.
        owner = await conn.fetchrow("SELECT id, org_id FROM users WHERE email = $1", live)
        assert owner is not None
        user_id, org_id = owner["id"], owner["org_id"]
        spent = {}
        for label, consumed, expires in [
            ("old consumed", "now() - interval '2 days'", "now() + interval '1 hour'"),
            ("old expired", "NULL", "now() - interval '2 days'"),
            ("recent consumed", "now() - interval '1 hour'", "now() + interval '1 hour'"),
            ("valid", "NULL", "now() + interval '1 hour'"),
        ]:
            spent[label] = await conn.fetchval(
                "INSERT INTO one_time_tokens (org_id, user_id, purpose, token_hash, expires_at,"
                f" consumed_at) VALUES ($1, $2, 'magic_link', sha256(gen_random_uuid()::text::bytea),"
                f" {expires}, {consumed}) RETURNING id",
                org_id,
                user_id,
            )

    purged = await run_housekeeping(auth.state)
    assert purged.sessions >= 2
    assert purged.retired_tokens >= 2
    assert purged.one_time_tokens >= 2

    async with admin(admin_dsn) as conn:
        remaining = {
            r["id"]
            for r in await conn.fetch("SELECT id FROM sessions WHERE id = ANY($1)", list(sessions.values()))
        }
        assert remaining == {sessions[recent_revoked], sessions[live]}
        orphans = await conn.fetchval(
            "SELECT count(*) FROM session_retired_tokens WHERE session_id = ANY($1)",
            [sessions[old_revoked], sessions[old_expired]],
        )
        assert orphans == 0
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM session_retired_tokens WHERE session_id = $1", sessions[live]
            )
            >= 1
        )
        kept = {
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM one_time_tokens WHERE id = ANY($1)", list(spent.values())
            )
        }
        assert kept == {spent["recent consumed"], spent["valid"]}
    # The live session still refreshes.
    assert (await do_refresh(client, live_token)).status_code == 200
    # A second pass is harmless.
    await run_housekeeping(auth.state)


async def test_housekeeping_goes_round_until_every_org_is_clean(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    users = [ids_of((await signup(client, auth.settings))[1])[1] for _ in range(3)]
    dead_for = timedelta(seconds=auth.settings.refresh_token_ttl_seconds + 60)
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() - $2::interval WHERE user_id = ANY($1)", users, dead_for
        )
    # One org per round: three orgs (at least) take several rounds.
    purged, _ = await purge_dead_sessions(auth.state, batch=1)
    assert purged >= 3
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = ANY($1)", users) == 0
