"""Multi-command Redis units (arq's enqueue, the revocation markers' pipeline) against a frozen
redis-server: bounded by the guard like single commands, not by the 10 s socket timeout."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from devstack.redis import LocalRedis
from shared.access_tokens import mark_sessions_revoked
from shared.email_queue import MagicLinkProps, enqueue_email
from shared.errors import ServiceUnavailable
from shared.redis import RedisGuard, RedisTimeout, create_redis
from shared.settings import Settings
from tests.redis_freeze import skips_redis

pytestmark = pytest.mark.slow


@pytest.fixture
def frozen_redis() -> Iterator[LocalRedis]:
    """A redis-server of the test's own, frozen with SIGSTOP (thawed and stopped afterwards)."""
    with tempfile.TemporaryDirectory(prefix="bbtest-redis-pipeline-") as directory:
        server = LocalRedis(Path(directory) / "redis").start()
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            yield server
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
            server.stop()


def _timeouts() -> float:
    return REGISTRY.get_sample_value("redis_unavailable_total", {"reason": "timeout"}) or 0.0


@pytest.fixture
def guarded_settings(make_settings: Callable[..., Settings], frozen_redis: LocalRedis) -> Settings:
    # A call bound well below the socket timeout: the guard, not the socket, must end the unit.
    # One failure opens the breaker here, so that the test sees the guard count it.
    return make_settings(
        "auth", redis_url=frozen_redis.url, redis_call_timeout_ms=300, redis_breaker_failures=1
    )


async def test_an_email_enqueue_against_a_frozen_redis_is_a_guarded_503(guarded_settings: Settings) -> None:
    guard = RedisGuard.from_settings(guarded_settings)
    client = create_redis(guarded_settings, guard)
    before = _timeouts()
    try:
        props = MagicLinkProps(link="https://example.test/magic#t=x", expires_in_seconds=900)
        with pytest.raises(ServiceUnavailable):
            await enqueue_email(client, guarded_settings, to="a@example.test", props=props)
    finally:
        await client.aclose()
    # The guard judged the silence (and opened its breaker): the socket timeout did not.
    assert _timeouts() == before + 1
    assert await skips_redis(guard)


async def test_revocation_markers_against_a_frozen_redis_are_guarded(guarded_settings: Settings) -> None:
    guard = RedisGuard.from_settings(guarded_settings)
    client = create_redis(guarded_settings, guard)
    before = _timeouts()
    try:
        with pytest.raises(RedisTimeout):
            await mark_sessions_revoked(client, guarded_settings, ["sid-1", "sid-2"])
    finally:
        await client.aclose()
    assert _timeouts() == before + 1
    assert await skips_redis(guard)
