"""The per-request path: one PostgreSQL round trip for /me, the token verified once, still robust."""

from __future__ import annotations

import asyncio

import pytest

from shared.access_tokens import mark_sessions_revoked
from shared.redis import create_redis
from tests.api.helpers import add_session, round_trips, running


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


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/org"])
async def test_an_authenticated_read_is_one_statement(api, minter, make_org, path):
    """No BEGIN, no ping, no separate set_config: one statement binds the tenant and reads."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    assert (await api.client.get(path, headers=headers)).status_code == 200  # warm: prepared
    with round_trips() as sent:
        response = await api.client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.json()["id" if path.endswith("org") else "user"]
    assert len(sent) == 1, sent
    assert "set_config('app.current_org_id'" in sent[0] and "FROM users" in sent[0]


async def test_a_route_with_a_transaction_binds_the_tenant_with_its_first_statement(api, minter, make_org):
    """GET /users: BEGIN, the caller's row (binding the tenant), the page, COMMIT."""
    org = await make_org("owner", "member")
    headers = minter.headers(org.owner)
    assert (await api.client.get("/api/v1/users", headers=headers)).status_code == 200
    with round_trips() as sent:
        response = await api.client.get("/api/v1/users", headers=headers)
    assert response.status_code == 200
    assert {u["id"] for u in response.json()["items"]} == {str(m.id) for m in org.members}
    assert len(sent) == 4, sent
    assert sent[0] == "BEGIN" and sent[3] == "COMMIT"
    assert "set_config('app.current_org_id'" in sent[1]
    assert "set_config" not in sent[2] and "FROM users" in sent[2]


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


async def test_a_caller_refused_after_opening_the_transaction_gives_its_connection_back(
    api_settings, minter, make_org, admin
):
    """GET /users opens its transaction with the caller's read; a caller deleted since the
    token (401) must roll it back and release the connection: the pool here has ONE."""
    org = await make_org("owner", "member")
    member = org.by_role("member")
    async with running(api_settings(database_pool_size=1, database_max_overflow=0)) as api:
        gone = minter.headers(member)
        await admin.execute("DELETE FROM users WHERE id = $1", member.id)
        for _ in range(3):
            refused = await api.client.get("/api/v1/users", headers=gone)
            assert refused.status_code == 401, refused.text
        # Nothing was left open: the one connection serves the next transaction at once.
        response = await api.client.get("/api/v1/users", headers=minter.headers(org.owner))
        assert response.status_code == 200, response.text
        assert api.app.state.resources.engine.pool.checkedout() == 0
