"""The one Redis client per process, its guard (a bound per call, a circuit breaker), key names.

A call past its bound (`REDIS_CALL_TIMEOUT_MS`) while the breaker is closed is `RedisTimeout`: a
slow Redis and a slow process look alike, so the request is shed (503), never let through. A
refused or dropped call, or one the open breaker skips, is `RedisUnavailable`: the api fails open
(counted), auth fails closed. The breaker opens after `REDIS_BREAKER_FAILURES` failures with no
success between them, overlapping calls counting once (a stall fails the calls in flight, the
next ones get answers: load alone never opens it); after `REDIS_BREAKER_SECONDS` one trial call
tries Redis, and its success closes the breaker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from arq.connections import ArqRedis
from prometheus_client import Counter, Gauge
from redis import exceptions
from redis.asyncio import BlockingConnectionPool

from shared.settings import Settings
from shared.tracing import instrument_redis

logger = logging.getLogger("blockbot.redis")
T = TypeVar("T")

REDIS_UNAVAILABLE = Counter("redis_unavailable_total", "Guarded Redis calls that failed.", ["reason"])
REDIS_BREAKER_OPEN = Gauge("redis_breaker_open", "1 while the Redis circuit breaker skips Redis.")


class RedisUnavailable(exceptions.ConnectionError):  # a connection error: `except RedisError` handles it too
    """Redis refused or dropped the call, or the open breaker skipped it: fail open or closed."""


class RedisTimeout(exceptions.ConnectionError):
    """No answer within the call's bound while the breaker was closed: shed the request (503)."""


_INSIDE_GUARD: ContextVar[bool] = ContextVar("inside_redis_guard", default=False)


class GuardedRedis(ArqRedis):
    """Each command through the guard (if any); run a pipeline or an enqueue with `guarded()`."""

    guard: RedisGuard | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        run = super().execute_command
        return await guarded(self, lambda: run(*args, **options))  # type: ignore[no-untyped-call]


async def guarded(client: object, call: Callable[[], Awaitable[T]]) -> T:
    """Run a multi-command unit as one guarded call of `client` (as it is, if it has no guard);
    the commands inside it are not guarded (and counted) again."""
    guard = client.guard if isinstance(client, GuardedRedis) else None
    if guard is None or _INSIDE_GUARD.get():
        return await call()
    return await guard.run(call)


def create_redis(settings: Settings, guard: RedisGuard | None = None, *, timeout: float = 10.0) -> ArqRedis:
    """The process's client, an `ArqRedis` (it enqueues jobs too), traced when tracing is on. At most
    `redis_max_connections` (a caller waits for one); `timeout` bounds each socket read, connect and
    wait: the bound of unguarded clients (worker, scripts). No command is retried: it may have run."""
    settings.require("redis_url")
    instrument_redis()
    pool = BlockingConnectionPool.from_url(
        str(settings.redis_url),
        max_connections=settings.redis_max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    # Jobs in JSON, never arq's default pickle: whoever can write to Redis would run code.
    client = GuardedRedis(pool, orjson.dumps, orjson.loads, email_queue_name(settings))
    client.guard, client.auto_close_connection_pool = guard, True  # closing the client closes its pool
    return client


def email_queue_name(settings: Settings) -> str:
    return settings.redis_key_prefix + "queue:email"  # the arq queue the worker drains


def redis_key(settings: Settings, *parts: str) -> str:
    return settings.redis_key_prefix + ":".join(parts)  # `<prefix><part>:<part>...`


@dataclass(eq=False)  # one per process, compared by identity
class RedisGuard:
    """Bounds each call and keeps the circuit breaker (see the module docstring)."""

    call_timeout: float  # seconds
    failures: int  # consecutive failures that open the breaker
    breaker_seconds: float
    clock: Callable[[], float] = time.monotonic  # tests turn their own
    _in_a_row: int = field(default=0, init=False)  # failures since the last success
    _last_failure: float = field(default=float("-inf"), init=False)  # when the last counted one ended
    _open_until: float | None = field(default=None, init=False)  # None while the breaker is closed

    @classmethod
    def from_settings(cls, s: Settings) -> RedisGuard:
        return cls(s.redis_call_timeout_ms / 1000, s.redis_breaker_failures, s.redis_breaker_seconds)

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` within the bound; `RedisTimeout` or `RedisUnavailable` as described above."""
        trial = self._open_until is not None
        if self._open_until is not None:
            if self.clock() < self._open_until:
                REDIS_UNAVAILABLE.labels("breaker_open").inc()
                raise RedisUnavailable("circuit breaker open")
            self._open_until = self.clock() + self.breaker_seconds  # the trial's answer decides
        started, token = self.clock(), _INSIDE_GUARD.set(True)
        try:
            async with asyncio.timeout(self.call_timeout):
                result = await call()
        except TimeoutError:
            self._failed(started, trial, "timeout")
            error = RedisUnavailable if trial else RedisTimeout  # a failed trial is an outage
            raise error(f"no answer within {self.call_timeout:.3f} s") from None
        except (exceptions.RedisError, OSError) as failure:
            self._failed(started, trial, "error")
            raise RedisUnavailable(repr(failure)) from failure
        finally:
            _INSIDE_GUARD.reset(token)
        self._in_a_row = 0
        if trial:
            self._open_until = None
            REDIS_BREAKER_OPEN.set(0)
            logger.info("redis answers again: circuit breaker closed")
        return result

    def _failed(self, started: float, trial: bool, reason: str) -> None:
        REDIS_UNAVAILABLE.labels(reason).inc()
        if started >= self._last_failure:  # sent after the last counted failure: a new one
            self._in_a_row += 1
            self._last_failure = self.clock()
        if self._open_until is None and self._in_a_row >= self.failures:
            REDIS_BREAKER_OPEN.set(1)
            logger.warning("redis unavailable: circuit breaker open", extra={"reason": reason})
            self._open_until = self.clock() + self.breaker_seconds
        elif trial:
            self._open_until = self.clock() + self.breaker_seconds  # only a success closes it
