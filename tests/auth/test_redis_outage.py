"""Auth with its own redis-server frozen (SIGSTOP): logins fail closed with a fast 503, then recover.

The login's rate limit is checked in Redis before anything else and fails closed; the guard's
per-call bound and circuit breaker make that 503 quick instead of a hang behind a frozen Redis.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from devstack.redis import LocalRedis
from tests.auth.helpers import new_email
from tests.outage_load import Load
from tests.redis_freeze import freeze_under_load

pytestmark = pytest.mark.slow

SLOW_SECONDS = 2.0  # generous beside the ~200 ms wanted (printed): counted, not timed tightly


async def test_login_fails_closed_fast_while_redis_is_frozen_then_recovers(start_auth: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="bbtest-auth-redis-") as directory:
        server = LocalRedis(Path(directory) / "redis").start()
        try:
            async with (
                start_auth(redis_url=server.url, redis_call_timeout_ms=150) as auth,
                auth.client() as client,
            ):
                body = {"email": new_email(), "password": "not the password at all"}
                load = Load(lambda: client.post("/api/v1/auth/login", json=body), workers=4).start()
                await load.until(lambda s: s.response.status_code == 401, within=60)
                await freeze_under_load(server, load)
                recovery = await load.until(lambda s: s.response.status_code == 401, within=30)
                await load.stop()
        finally:
            server.stop()
    load.report("auth login, Redis frozen 3 s")
    print(f"[figures] auth recovery after thaw: {recovery:.2f} s")
    statuses = load.statuses()
    assert set(statuses) <= {401, 503}, statuses
    frozen_samples = load.of("frozen")
    assert frozen_samples and load.statuses("frozen").get(503, 0) >= 1
    problem = next(s.response for s in frozen_samples if s.response.status_code == 503)
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.headers["retry-after"]
    assert load.over("frozen", SLOW_SECONDS) == 0
