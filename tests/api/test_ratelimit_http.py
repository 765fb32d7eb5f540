"""Rate limits through HTTP: exactness under concurrency, headers, sliding, Redis down, CORS."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from devstack.ports import free_port
from tests.api.conftest import running


async def test_500_concurrent_requests_against_limit_100_let_exactly_100_through(
    api_settings, minter, make_org
):
    org = await make_org("owner")
    async with running(api_settings(ratelimit_user_endpoint_per_minute=100)) as api:
        headers = minter.headers(org.owner)
        responses = await asyncio.gather(
            *(api.client.get("/api/v1/me", headers=headers) for _ in range(500))
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 100
    assert statuses.count(429) == 400
    ok_remaining = sorted(int(r.headers["ratelimit-remaining"]) for r in responses if r.status_code == 200)
    assert ok_remaining == list(range(100))
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["type"].endswith("/rate-limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 120
    assert limited.headers["ratelimit-remaining"] == "0"


async def test_headers_on_every_response_and_decreasing(api_settings, minter, make_org):
    org = await make_org("owner", "member")
    async with running(api_settings(ratelimit_user_endpoint_per_minute=5)) as api:
        headers = minter.headers(org.owner)
        seen = []
        for _ in range(5):
            response = await api.client.get("/api/v1/me", headers=headers)
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "5"
            assert 0 < int(response.headers["ratelimit-reset"]) <= 60
            seen.append(int(response.headers["ratelimit-remaining"]))
        assert seen == [4, 3, 2, 1, 0]
        refused = await api.client.get("/api/v1/me", headers=headers)
        assert refused.status_code == 429 and refused.headers["ratelimit-remaining"] == "0"
        # Another endpoint of the same user has its own per-endpoint window...
        other = await api.client.get("/api/v1/org", headers=headers)
        assert other.status_code == 200 and other.headers["ratelimit-remaining"] == "4"
        # ...and errors carry the headers too (a 403 after a decision was made).
        forbidden = await api.client.patch(
            "/api/v1/org", json={"name": "x"}, headers=minter.headers(org.by_role("member"))
        )
        assert forbidden.status_code == 403 and forbidden.headers["ratelimit-remaining"] == "4"
        # Unauthenticated requests have no decision, hence no headers.
        assert "ratelimit-limit" not in (await api.client.get("/api/v1/me")).headers


async def test_user_and_org_windows_apply_across_endpoints(api_settings, minter, make_org):
    org = await make_org("owner", "member")
    async with running(api_settings(ratelimit_user_per_hour=3, ratelimit_org_per_hour=5)) as api:
        owner = minter.headers(org.owner)
        member = minter.headers(org.by_role("member"))
        for path in ("/api/v1/me", "/api/v1/org", "/api/v1/users"):
            assert (await api.client.get(path, headers=owner)).status_code == 200
        refused = await api.client.get("/api/v1/users", headers=owner)
        assert refused.status_code == 429 and "(user)" in refused.json()["detail"]
        assert (await api.client.get("/api/v1/me", headers=member)).status_code == 200
        assert (await api.client.get("/api/v1/me", headers=member)).status_code == 200
        refused = await api.client.get("/api/v1/org", headers=member)
        assert refused.status_code == 429 and "(org)" in refused.json()["detail"]


async def test_window_slides_and_allows_again(api_settings, minter, make_org):
    org = await make_org("owner")
    async with running(api_settings(ratelimit_user_endpoint_per_minute=3)) as api:
        state = api.app.state.api
        state.rate_policy = state.rate_policy.with_periods(3600, 3600, 1)
        headers = minter.headers(org.owner)
        for _ in range(3):
            assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
        refused = await api.client.get("/api/v1/me", headers=headers)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        await asyncio.sleep(2.05)
        for _ in range(3):
            assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200


def sample(name, labels=None):
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_redis_down_api_fails_open_and_counts(api_settings, minter, make_org):
    org = await make_org("owner")
    dead = api_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    fail_open = {"scope": "all", "outcome": "fail_open"}
    before = sample("ratelimit_decisions_total", fail_open)
    before_revocation = sample("api_revocation_check_fail_open_total")
    async with running(dead) as api:
        response = await api.client.get("/api/v1/me", headers=minter.headers(org.owner))
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == str(org.owner.id)
        assert "ratelimit-limit" not in response.headers  # no decision without Redis
        ready = await api.client.get("/ready")
        assert ready.status_code == 503
    assert sample("ratelimit_decisions_total", fail_open) == before + 1
    assert sample("api_revocation_check_fail_open_total") == before_revocation + 1


async def test_redis_stopped_while_running(api_settings, minter, make_org, tmp_path):
    """A private redis-server stopped under a running app: requests keep being served."""
    from devstack.redis import LocalRedis

    server = LocalRedis(tmp_path / "redis").start()
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    fail_open = {"scope": "all", "outcome": "fail_open"}
    try:
        async with running(api_settings(redis_url=server.url)) as api:
            first = await api.client.get("/api/v1/me", headers=headers)
            assert first.status_code == 200 and first.headers["ratelimit-remaining"]
            server.stop()
            before = sample("ratelimit_decisions_total", fail_open)
            second = await api.client.get("/api/v1/me", headers=headers)
            assert second.status_code == 200
            assert sample("ratelimit_decisions_total", fail_open) == before + 1
    finally:
        server.stop()


async def test_cors_allows_only_configured_origins(api_settings, minter, make_org):
    allowed, denied = "https://app.example.com", "https://evil.example.net"
    org = await make_org("owner")
    async with running(api_settings(cors_origins=[allowed])) as api:
        preflight = {"Access-Control-Request-Method": "PATCH",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        ok = await api.client.options("/api/v1/org", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert ok.headers["access-control-allow-credentials"] == "true"
        bad = await api.client.options("/api/v1/org", headers={"Origin": denied, **preflight})
        assert bad.status_code == 400
        assert "access-control-allow-origin" not in bad.headers
        response = await api.client.get(
            "/api/v1/me", headers={"Origin": allowed, **minter.headers(org.owner)}
        )
        assert response.headers["access-control-allow-origin"] == allowed
        assert "RateLimit-Remaining" in response.headers["access-control-expose-headers"]
        response = await api.client.get(
            "/api/v1/me", headers={"Origin": denied, **minter.headers(org.owner)}
        )
        assert "access-control-allow-origin" not in response.headers


async def test_metrics_use_route_templates(client, minter, make_org):
    org = await make_org("owner")
    await client.get(f"/api/v1/users/{org.owner.id}", headers=minter.headers(org.owner))
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/users/{user_id}"' in text
    assert str(org.owner.id) not in text
    assert "api_auth_failures_total" in text
