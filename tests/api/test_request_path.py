"""The per-request path: the token verified once, its revocation checked every time, robust to
dropped connections, a small pool and a lost script. (Its statements are bench/auth_paths.py's.)"""

from __future__ import annotations

import asyncio
import logging

from shared.access_tokens import mark_sessions_revoked
from shared.redis import create_redis
from tests.api.helpers import add_session, running


async def test_pooled_connections_killed_by_the_server_are_replaced(api, minter, make_org, admin):
    """No pre-ping, but after PostgreSQL drops every pooled connection (a restart) requests still work."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    for _ in range(3):
        assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
    killed = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
        api.settings.service_name,
    )
    assert killed >= 1
    for _ in range(3):
        response = await api.client.get("/api/v1/me", headers=headers)
        assert response.status_code == 200, response.text


async def test_a_token_is_verified_once_and_its_revocation_still_checked_every_request(
    api, minter, make_org, admin, decodes
):
    org = await make_org("owner")
    sid = await add_session(admin, org.owner)
    headers = minter.headers(org.owner, sid=sid)
    for _ in range(3):
        assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
    assert len(decodes) == 1  # verified once, then served from the claims cache
    redis = create_redis(api.settings)
    try:
        await mark_sessions_revoked(redis, api.settings, [sid])
    finally:
        await redis.aclose()
    response = await api.client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert len(decodes) == 1  # refused although its claims are cached


async def test_concurrent_callers_of_two_orgs_on_one_pooled_connection_each_see_their_own(
    api_settings, minter, make_org
):
    """/me of two orgs, 100 requests at once, through an api whose pool has ONE connection."""
    first, second = await make_org("owner"), await make_org("owner")
    async with running(api_settings(database_pool_size=1, database_max_overflow=0)) as api:
        requests = [
            (org, api.client.get("/api/v1/me", headers=minter.headers(org.owner)))
            for org in [first, second] * 50
        ]
        responses = await asyncio.gather(*(request for _, request in requests))
    for (org, _), response in zip(requests, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["org"]["id"], body["user"]["id"]) == (str(org.id), str(org.owner.id))


async def test_the_limiter_reloads_its_script_when_redis_lost_it(api, minter, make_org):
    """EVALSHA of a script Redis no longer has (restart, SCRIPT FLUSH): loaded again, not a failure."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
    redis = create_redis(api.settings)
    try:
        await redis.script_flush()
    finally:
        await redis.aclose()
    response = await api.client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200, response.text
    assert int(response.headers["ratelimit-remaining"]) >= 0


async def test_a_refused_caller_opens_no_transaction_and_holds_no_connection(
    api_settings, minter, make_org, admin
):
    """A caller deleted since the token (401) is refused before the route's transaction: the
    pool here has ONE connection, and it serves the next request at once."""
    org = await make_org("owner", "member")
    member = org.by_role("member")
    async with running(api_settings(database_pool_size=1, database_max_overflow=0)) as api:
        gone = minter.headers(member)
        await admin.execute("DELETE FROM users WHERE id = $1", member.id)
        for _ in range(3):
            refused = await api.client.get("/api/v1/users", headers=gone)
            assert refused.status_code == 401, refused.text
        response = await api.client.get("/api/v1/users", headers=minter.headers(org.owner))
        assert response.status_code == 200, response.text
        assert api.app.state.resources.engine.pool.checkedout() == 0


async def test_concurrent_requests_over_a_small_pool_all_answer_and_close_cleanly(
    api_settings, minter, make_org
):
    """60 requests at once (reads and transactions) over a pool of one plus overflow: all 200,
    and no connection is closed outside SQLAlchemy's greenlet (MissingGreenlet) or left logged."""
    org = await make_org("owner", "member")
    headers = minter.headers(org.owner)
    paths = ["/api/v1/me", "/api/v1/users", "/api/v1/org"] * 20
    logged: list[logging.LogRecord] = []
    keep = logging.Handler(logging.WARNING)
    keep.emit = logged.append  # type: ignore[method-assign, assignment]
    async with running(api_settings(database_pool_size=1, database_max_overflow=4)) as api:
        logging.getLogger().addHandler(keep)  # after the app configured logging
        try:
            responses = await asyncio.gather(*(api.client.get(p, headers=headers) for p in paths))
        finally:
            logging.getLogger().removeHandler(keep)
    assert [r.status_code for r in responses] == [200] * len(paths), {r.text for r in responses}
    troubles = [r for r in logged if r.name.startswith("sqlalchemy") or "greenlet" in r.getMessage()]
    assert troubles == [], [r.getMessage() for r in troubles]
