"""arq's worker, made to outlive Redis outages, from outside arq.

A Redis error in arq's poll loop ends `Worker.main`. `run_outliving_redis` runs it again
instead: the worker stays up, tries again with a backoff (0.5 s doubling, at most 10 s), reports
not-ready on /ready meanwhile, logs one line when Redis goes away and one when it is back, and
drains the queue afterwards; jobs already running go on meanwhile. Nothing is lost (the jobs
stay in Redis) and nothing is sent twice (a job interrupted after its send is retried with the
same provider idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
import time
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


class ResilientWorker(Worker):
    """An arq `Worker` that gives back a concurrency slot when a job's start fails on Redis."""

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # arq takes a concurrency slot before its Redis transaction and does not give it back
        # when that transaction fails: after a few outages the worker would run nothing.
        for job_id in job_ids:
            counter = self.job_counter
            try:
                await super().start_jobs([job_id])
            except REDIS_FAILURES:
                if self.job_counter == counter + 1 and job_id.decode() not in self.tasks:
                    self.job_counter -= 1
                    self.sem.release()
                raise


async def run_outliving_redis(worker: Worker, health: RedisHealth) -> None:
    """Run arq's `Worker.main` until it returns (burst mode) or a shutdown; a Redis failure ends it,
    and it runs again, after a backoff while Redis does not answer (its start-up hook then marks
    Redis reachable). arq also re-raises a job's Redis error once the job is over, possibly after
    Redis is back: such an error ends the run without counting as an outage."""
    stopped = asyncio.Event()
    worker.on_stop = lambda _signal: stopped.set()  # arq's public hook, after a shutdown signal
    while True:
        try:
            await worker.async_run()
            return
        except REDIS_FAILURES as error:
            if health.up and await _answers(worker):
                continue
            delay = health.failed(error)
        try:
            await asyncio.wait_for(stopped.wait(), delay)
        except TimeoutError:
            continue
        return


async def _answers(worker: Worker) -> bool:
    try:
        return bool(await worker.pool.ping())
    except REDIS_FAILURES:
        return False
