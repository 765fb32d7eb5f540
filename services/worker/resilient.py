"""arq's worker, made to outlive Redis outages.

arq lets a Redis error in its poll loop end `Worker.main`, and the process exits 1: a Redis
pause of a few seconds, or any restart, stopped the email worker. Here a Redis error pauses
polling instead: the worker stays up, retries with a backoff (0.5 s doubling, at most 10 s),
reports not-ready on /ready meanwhile, logs one line when Redis goes away and one when it is
back, and drains the queue afterwards. Nothing is lost (the jobs stay in Redis) and nothing is
sent twice (a job interrupted after its send is retried with the same provider idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

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
    """An arq `Worker` whose poll loop survives Redis errors (see the module docstring)."""

    def __init__(self, *args: Any, health: RedisHealth, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis_health = health

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_FAILURES as error:
            await asyncio.sleep(self.redis_health.failed(error))
            return
        self.redis_health.succeeded()

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
