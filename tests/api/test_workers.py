"""Several uvicorn workers (WEB_CONCURRENCY): one scrape of /metrics reports all of them.

The api runs as a real uvicorn process with two workers; whichever worker answers a scrape,
the request counters it reports are the sum over both (prometheus-client multiprocess mode).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest

from devstack.ports import free_port
from tests.api.helpers import HIGH
from tests.helpers import uvicorn_process

REQUESTS = 30


@pytest.fixture
def two_workers(database, redis_url, redis_prefix, minter, tmp_path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))},
        "ENV": "test",
        "SERVICE_NAME": "api",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database.api_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"{redis_prefix}workers:",
        "JWT_PUBLIC_KEYS": minter.public_b64,
        "RATELIMIT_ORG_PER_HOUR": str(HIGH),
        "RATELIMIT_USER_PER_HOUR": str(HIGH),
        "RATELIMIT_USER_ENDPOINT_PER_MINUTE": str(HIGH),
        "WEB_CONCURRENCY": "2",
        "TMPDIR": str(tmp_path),
    }
    with uvicorn_process("services.api.main:app", env, port, tmp_path / "api.log") as pid:
        yield f"http://127.0.0.1:{port}", pid


def _me_count(exposition: str) -> float:
    pattern = r'^http_requests_total\{[^}]*route="/api/v1/me"[^}]*status_class="2xx"[^}]*\} (\S+)$'
    found = re.findall(pattern, exposition, re.MULTILINE)
    assert len(found) <= 1, found  # one series, not one per worker
    return float(found[0]) if found else 0.0


async def test_metrics_of_two_workers_are_one_aggregate(two_workers, make_org, minter, tmp_path):
    url, supervisor = two_workers
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    # A new connection per request, so the kernel hands them to either worker.
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=fresh, timeout=30) as client:
        for _ in range(REQUESTS):
            assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        scrapes = [(await client.get("/metrics")).text for _ in range(8)]
    assert [_me_count(text) for text in scrapes] == [REQUESTS] * 8
    assert all(len(re.findall(r"^http_requests_in_flight ", t, re.MULTILINE)) == 1 for t in scrapes)

    # Both workers write to ONE directory, named for their supervisor.
    directories = list(tmp_path.glob("blockbot-metrics-*"))
    assert [d.name.split("-")[2] for d in directories] == [str(supervisor)]
    writers = {m.group(1) for f in directories[0].iterdir() if (m := re.search(r"_(\d+)\.db$", f.name))}
    assert len(writers) == 2, writers
