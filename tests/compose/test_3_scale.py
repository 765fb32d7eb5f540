"""Part 3: horizontal scale, `--scale api=2 --scale auth=2`, through the same gateway.

Traefik reaches `api:8002` and `auth:8001` by DNS name; Docker's DNS answers with every
replica, so new connections spread over them. Each replica's own /metrics (read inside the
container) shows how many requests it served.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.compose.accounts import REFRESH_COOKIE, account_from, assert_problem, login, register
from tests.compose.conftest import FACTS, HTTP_PORT, ComposeStack, part_timer, timed

pytestmark = pytest.mark.compose
_part = part_timer("part 3: scale api=2 auth=2 (total)")
ENDPOINT_LIMIT = 100  # RATELIMIT_USER_ENDPOINT_PER_MINUTE's default


def served(stack: ComposeStack, service: str, route_prefix: str) -> list[float]:
    """Requests each replica of `service` handled on routes starting with `route_prefix`."""
    port = {"api": 8002, "auth": 8001}[service]
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
    counts = []
    for index in (1, 2):
        text = stack.exec(service, "python", "-c", script, index=index).stdout
        pattern = r"^http_requests_total\{([^}]*)\} (\S+)$"
        counts.append(
            sum(
                float(value)
                for labels, value in re.findall(pattern, text, flags=re.MULTILINE)
                if f'route="{route_prefix}' in labels
            )
        )
    return counts


def concurrently(count: int, call: Callable[[httpx.Client], httpx.Response], workers: int = 25) -> list[int]:
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{HTTP_PORT}", timeout=60.0) as client,
        ThreadPoolExecutor(workers) as pool,
    ):
        return [response.status_code for response in pool.map(lambda _: call(client), range(count))]


@pytest.fixture(scope="module")
def scaled(stack: ComposeStack) -> Iterator[ComposeStack]:
    started = time.monotonic()
    stack.up("--scale", "api=2", "--scale", "auth=2")
    timed("part 3: up --wait --scale api=2 --scale auth=2", started)
    assert len(stack.containers("api")) == 2 and len(stack.containers("auth")) == 2
    yield stack
    stack.up("--scale", "api=1", "--scale", "auth=1")


def test_requests_spread_over_both_replicas(scaled: ComposeStack, client: httpx.Client) -> None:
    account = register(client, scaled, "spread")
    api_before, auth_before = served(scaled, "api", "/api/v1/"), served(scaled, "auth", "/api/v1/auth/")
    # 90 of each: under the per-endpoint limit (100 a minute), so every answer is a 200.
    statuses = concurrently(90, lambda c: c.get("/api/v1/me", headers=account.auth))
    statuses += concurrently(90, lambda c: c.get("/api/v1/org", headers=account.auth))
    statuses += concurrently(150, lambda c: c.get("/api/v1/auth/.well-known/jwks.json"))
    assert set(statuses) == {200}, Counter(statuses)
    api_after, auth_after = served(scaled, "api", "/api/v1/"), served(scaled, "auth", "/api/v1/auth/")
    api_share = [after - before for before, after in zip(api_before, api_after, strict=True)]
    auth_share = [after - before for before, after in zip(auth_before, auth_after, strict=True)]
    FACTS["part 3: api requests per api replica (of 180)"] = str(api_share)
    FACTS["part 3: auth requests per auth replica (of 150)"] = str(auth_share)
    assert sum(api_share) == 180 and all(share > 0 for share in api_share), api_share
    assert all(share > 0 for share in auth_share), auth_share


def test_rate_limit_is_exact_across_replicas(scaled: ComposeStack, client: httpx.Client) -> None:
    account = register(client, scaled, "limit")
    statuses = Counter(concurrently(500, lambda c: c.get("/api/v1/me", headers=account.auth), workers=50))
    FACTS["part 3: 500 concurrent /me, limit 100"] = str(dict(statuses))
    assert statuses == {200: ENDPOINT_LIMIT, 429: 500 - ENDPOINT_LIMIT}, statuses


def test_logout_on_one_replica_revokes_on_the_other(scaled: ComposeStack, client: httpx.Client) -> None:
    account = register(client, scaled, "logout")
    before = served(scaled, "api", "/api/v1/me")
    out = client.post("/api/v1/auth/logout", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert out.status_code == 204, out.text
    statuses = concurrently(40, lambda c: c.get("/api/v1/me", headers=account.auth))
    after = served(scaled, "api", "/api/v1/me")
    assert set(statuses) == {401}, Counter(statuses)
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)  # both replicas refused


def test_refresh_rotation_and_reuse_detection_across_replicas(
    scaled: ComposeStack, client: httpx.Client
) -> None:
    account = register(client, scaled, "rotation")

    def refresh(token: str) -> httpx.Response:
        return client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={token}"})

    before = served(scaled, "auth", "/api/v1/auth/refresh")
    # Ten session families (one login each), each rotated twice: requests land on either replica.
    families = []
    for _ in range(10):
        first = login(client, account.email)
        second = account_from(refresh(first.refresh), account.email)
        third = account_from(refresh(second.refresh), account.email)
        assert len({first.refresh, second.refresh, third.refresh}) == 3
        families.append((first, third))
    time.sleep(1.5)  # past the grace window
    for first, third in families:
        assert_problem(refresh(first.refresh), 401)  # reuse of a rotated token...
        assert_problem(refresh(third.refresh), 401)  # ...revokes the whole family
    after = served(scaled, "auth", "/api/v1/auth/refresh")
    share = [a - b for a, b in zip(after, before, strict=True)]
    FACTS["part 3: refresh requests per auth replica (of 40)"] = str(share)
    assert sum(share) == 40 and all(part > 0 for part in share), share
