"""arq's worker, made to outlive Redis outages from outside arq: only its public API is used.

A Redis error ends arq's `Worker.main` (its poll loop has no retry). `run_outliving_redis` runs a
fresh `Worker` instead, after a backoff while Redis does not answer (0.5 s doubling, at most
10 s); it reports not-ready on /ready meanwhile and logs one line when Redis goes away and one
when it is back. A fresh worker rather than the same one again: a Redis error while arq starts a
job leaves that worker's concurrency slot taken, so after a few outages it would run nothing.
Before the next worker starts, the jobs of the failed one are awaited: each ends within its job
timeout, so the concurrency limit holds across runs.

Why nothing is lost or sent twice: a job lives in Redis (the queue's sorted set) until the run
that sent it removes it. A run cut short (a Redis error, a restart, SIGKILL) leaves it there, and
arq runs it again once its in-progress marker expires (job timeout + 10 s); the provider's
idempotency key (the job id) makes that second send a no-op when the first one got through.

Shutdown: SIGTERM/SIGINT goes to the running worker's own graceful stop (`handle_sig_wait_for_
completion`: no new jobs, in-flight sends finish for up to `job_completion_wait`, the rest are
cancelled and stay queued); between runs it just ends the loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from arq import Worker
from redis.exceptions import RedisError

logger = logging.getLogger("blockbot.worker")

BACKOFF_START_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
REDIS_FAILURES = (RedisError, OSError)


@dataclass
class RedisHealth:
    """What the worker last saw of Redis; /ready reads it."""

    down_since: float | None = None
    backoff: float = BACKOFF_START_SECONDS

    @property
    def up(self) -> bool:
        return self.down_since is None

    def failed(self, error: BaseException) -> float:
        """Record a failure; return how long to wait before polling again."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "redis unavailable: polling paused, retrying with backoff", extra={"error": repr(error)}
            )
        else:
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_SECONDS)
        return self.backoff

    def succeeded(self) -> None:
        if self.down_since is not None:
            logger.info(
                "redis reachable again: polling resumed",
                extra={"down_seconds": round(time.monotonic() - self.down_since, 1)},
            )
        self.down_since, self.backoff = None, BACKOFF_START_SECONDS


async def run_outliving_redis(
    new_worker: Callable[[], Worker], health: RedisHealth, *, handle_signals: bool = True
) -> None:
    """Run arq workers made by `new_worker` (with `handle_signals=False`: signals come here) one
    after the other until one returns (burst mode) or a shutdown; see the module docstring.

    arq also re-raises a job's Redis error once the job is over, possibly after Redis is back:
    such an error ends the run without counting as an outage."""
    stopping = asyncio.Event()
    worker = new_worker()

    def stop(signum: signal.Signals) -> None:
        stopping.set()
        if worker.main_task is not None and not worker.main_task.done():
            worker.handle_sig_wait_for_completion(signum)  # arq's graceful stop; it cancels the run

    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for signum in signals:
        loop.add_signal_handler(signum, stop, signum)
    try:
        while not stopping.is_set():
            try:
                await worker.async_run()
                return
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if stopping.is_set() and not (current and current.cancelling()):
                    return  # the graceful stop cancelled the run, not someone cancelling us
                raise
            except REDIS_FAILURES as error:
                delay = 0.0 if health.up and await _answers(worker) else health.failed(error)
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                worker = new_worker()  # its start-up hook marks Redis reachable again
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await worker.close()


async def _answers(worker: Worker) -> bool:
    try:
        return bool(await worker.pool.ping())
    except REDIS_FAILURES:
        return False
