"""The email worker with its own redis-server frozen (SIGSTOP) and restarted, while sending, and
with Redis failing just as a job starts.

Wanted: the worker stays up, reports not-ready on /ready while Redis is away, logs one line per
state change (no traceback), and drains everything afterwards: each email delivered exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.constants import in_progress_key_prefix
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import KeyT

from devstack.fake_resend import FakeResend
from devstack.ports import free_port
from devstack.redis import LocalRedis
from services.worker.main import WorkerOptions, serve
from shared.email_queue import MagicLinkProps, enqueue_email
from shared.redis import create_redis, email_queue_name
from tests.redis_freeze import frozen
from tests.worker.helpers import FAST_RETRY, wait_until

pytestmark = pytest.mark.slow

LINK = "http://localhost:8080/auth/magic#token=outage-secret-token"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, text: str) -> int:
        return sum(1 for r in self.records if text in r.getMessage())


async def test_worker_survives_redis_frozen_and_restarted(worker_settings, fake_resend: FakeResend):
    with tempfile.TemporaryDirectory(prefix="bbtest-worker-redis-") as directory:
        server = LocalRedis(Path(directory) / "redis", persist=True).start()
        settings = worker_settings(redis_url=server.url)
        port = free_port()
        options = WorkerOptions(
            metrics_port=port, handle_signals=False, retry=FAST_RETRY, poll_delay_seconds=0.05
        )
        lines = Lines()
        worker_logger = logging.getLogger("blockbot.worker")
        level = worker_logger.level
        worker_logger.setLevel(logging.INFO)
        worker_logger.addHandler(lines)
        producer = create_redis(settings)
        worker = asyncio.create_task(serve(settings, options))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

                async def status(path: str) -> int:
                    try:
                        return (await client.get(path)).status_code
                    except httpx.HTTPError:
                        return 0

                async def ready() -> bool:
                    return await status("/ready") == 200

                async def not_ready() -> bool:
                    return await status("/ready") == 503

                async def enqueue(count: int) -> None:
                    for _ in range(count):
                        await enqueue_email(
                            producer,
                            settings,
                            to="ada@example.org",
                            props=MagicLinkProps(link=LINK, expires_in_seconds=900),
                        )

                await wait_until(ready, 60, "the worker ready")
                await enqueue(20)

                # Freeze Redis with work in flight.
                async def paused(times: int) -> bool:
                    return lines.events("redis unavailable: polling paused") == times

                with frozen(server):
                    await wait_until(not_ready, 60, "/ready to say not ready while Redis is frozen")
                    # Frozen until the worker's own calls give up (its 3 s socket bound).
                    await wait_until(lambda: paused(1), 60, "the worker to notice the freeze")
                    assert not worker.done()
                await wait_until(ready, 60, "ready again after the thaw")
                await enqueue(20)
                # Restart Redis (its append-only file keeps the queue).
                await asyncio.to_thread(server.stop)
                await wait_until(not_ready, 60, "/ready to say not ready while Redis is stopped")
                await wait_until(lambda: paused(2), 60, "the worker to notice the stop")
                assert not worker.done()
                server = LocalRedis(Path(directory) / "redis", port=server.port, persist=True).start()
                await wait_until(ready, 60, "ready again after the restart")

                async def drained() -> bool:
                    return (
                        len(fake_resend.deliveries) >= 40
                        and await producer.zcard(email_queue_name(settings)) == 0
                    )

                await wait_until(drained, 120, "the queue drained")
                assert not worker.done()
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            worker_logger.removeHandler(lines)
            worker_logger.setLevel(level)
            await producer.aclose()
            server.stop()
    keys = [d.idempotency_key for d in fake_resend.deliveries]
    assert len(keys) == 40 and len(set(keys)) == 40, "an email was lost or delivered twice"
    assert lines.events("redis unavailable: polling paused") == 2
    assert lines.events("redis reachable again") == 2
    assert not any(r.exc_info for r in lines.records)


# A loop of its own: its patch of redis-py's `Pipeline.watch` is process-wide, and in the
# session's loop the tasks other tests left running would meet it too.
@pytest.mark.asyncio(loop_scope="function")
async def test_a_redis_error_as_a_job_starts_does_not_stall_the_worker(
    worker_settings, fake_resend: FakeResend, monkeypatch: pytest.MonkeyPatch
):
    """arq keeps a concurrency slot taken when starting a job fails on Redis: with one slot, a
    worker that went on after such an error would run nothing more."""
    settings = worker_settings(worker_concurrency=1)
    failures = 3
    watch = Pipeline.watch

    async def dropped_as_a_job_starts(self: Pipeline, *names: KeyT) -> Any:
        nonlocal failures
        if failures and any(str(name).startswith(in_progress_key_prefix) for name in names):
            failures -= 1
            raise RedisConnectionError("connection dropped as the job started")
        return await watch(self, *names)

    producer = create_redis(settings)
    for _ in range(3):
        await enqueue_email(
            producer, settings, to="ada@example.org", props=MagicLinkProps(link=LINK, expires_in_seconds=900)
        )
    monkeypatch.setattr(Pipeline, "watch", dropped_as_a_job_starts)
    options = WorkerOptions(metrics=False, handle_signals=False, retry=FAST_RETRY, poll_delay_seconds=0.02)
    worker = asyncio.create_task(serve(settings, options))
    try:

        async def drained() -> bool:
            return len(fake_resend.deliveries) >= 3 and await producer.zcard(email_queue_name(settings)) == 0

        await wait_until(drained, 60, "the queue drained after the failed starts")
    finally:
        worker.cancel()
        # Bounded: a worker that does not stop fails the test instead of holding the suite.
        async with asyncio.timeout(30):
            await asyncio.gather(worker, return_exceptions=True)
        await producer.aclose()
    assert failures == 0
    keys = [d.idempotency_key for d in fake_resend.deliveries]
    assert len(keys) == 3 and len(set(keys)) == 3, "an email was lost or delivered twice"
