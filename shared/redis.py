"""The one Redis client per process, its guard (a bound per call, a circuit breaker), key names.

A guarded call is bounded by `asyncio.timeout(REDIS_CALL_TIMEOUT_MS)`. A timeout while the breaker
is closed is `RedisTimeout`: the process cannot tell a slow Redis from its own slowness, so the
request is shed (503), never let through unchecked. A refused or dropped call, or any call while
the breaker is open, is `RedisUnavailable`: the api fails open (counted), auth fails closed.

The breaker opens after `REDIS_BREAKER_FAILURES` consecutive failures with no success between
them; calls that overlap count once (a stall times out every call in flight at one moment: one
failure), so load alone never opens it, since the calls sent after a stall get answered. After
`REDIS_BREAKER_SECONDS` one trial call tries Redis: success closes the breaker, failure reopens it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import orjson
from arq.connections import ArqRedis
from prometheus_client import Counter, Gauge
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.settings import Settings
from shared.tracing import instrument_redis

logger = logging.getLogger("blockbot.redis")
T = TypeVar("T")
Clock = Callable[[], float]

REDIS_UNAVAILABLE = Counter(
    "redis_unavailable_total", "Guarded Redis calls that failed (error, timeout, breaker_open).", ["reason"]
)
REDIS_BREAKER_OPEN = Gauge("redis_breaker_open", "1 while the Redis circuit breaker skips Redis.")
# Unguarded clients (the worker, scripts) rely on these; the guard's bound is far below them.
SOCKET_TIMEOUT_SECONDS = 10.0


# Both are connection errors, so every `except RedisError` (a 503, say) handles them too.
class RedisUnavailable(RedisConnectionError):
    """Redis refused or dropped the call, or the open breaker skipped it: fail open or closed."""


class RedisTimeout(RedisConnectionError):
    """No answer within the call's bound while the breaker was closed: shed the request (503)."""


_INSIDE_GUARD: ContextVar[bool] = ContextVar("inside_redis_guard", default=False)


class GuardedRedis(ArqRedis):
    """Each command through the guard (if any); run a pipeline or an enqueue with `guarded()`."""

    guard: RedisGuard | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        run = super().execute_command
        if self.guard is None or _INSIDE_GUARD.get():
            return await run(*args, **options)  # type: ignore[no-untyped-call]
        return await self.guard.run(lambda: run(*args, **options))  # type: ignore[no-untyped-call]


async def guarded(client: object, call: Callable[[], Awaitable[T]]) -> T:
    """Run a multi-command unit as one guarded call of `client` (as it is, if it has no guard)."""
    guard = client.guard if isinstance(client, GuardedRedis) else None
    if guard is None or _INSIDE_GUARD.get():
        return await call()
    return await guard.run(call)


def create_redis(
    settings: Settings, guard: RedisGuard | None = None, *, socket_timeout: float = SOCKET_TIMEOUT_SECONDS
) -> ArqRedis:
    """The process's client: at most `redis_max_connections`, a caller waits for a free one; no
    command is retried (it may have run, and a retried call would outlast its socket bound). An
    `ArqRedis`, so it also enqueues jobs; traced (command names only) when tracing is on."""
    settings.require("redis_url")
    instrument_redis()
    pool = BlockingConnectionPool.from_url(
        str(settings.redis_url),
        max_connections=settings.redis_max_connections,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )
    client = GuardedRedis(pool, serialize_job, deserialize_job, email_queue_name(settings))
    client.guard, client.auto_close_connection_pool = guard, True  # closing the client closes its pool
    return client


def email_queue_name(settings: Settings) -> str:
    return settings.redis_key_prefix + "queue:email"  # the arq queue the worker drains


def serialize_job(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)  # JSON, never pickle: whoever can write to Redis writes jobs


def deserialize_job(data: bytes) -> dict[str, Any]:
    return dict(orjson.loads(data))


def redis_key(settings: Settings, *parts: str) -> str:
    return settings.redis_key_prefix + ":".join(parts)  # `<prefix><part>:<part>...`


class RedisGuard:
    """Bounds each call and keeps the circuit breaker (see the module docstring)."""

    def __init__(
        self, call_timeout: float, failures: int, breaker_seconds: float, *, clock: Clock | None = None
    ) -> None:
        self.call_timeout, self.threshold, self.breaker_seconds = call_timeout, failures, breaker_seconds
        self._now = clock or (lambda: asyncio.get_running_loop().time())  # a clock of their own: tests
        self._failures = 0  # consecutive, overlapping calls counted once
        self._last_failure = float("-inf")  # when the last counted failure happened
        self._open_until: float | None = None  # set while open or half-open
        self._trial = False  # the half-open trial call is in flight

    @classmethod
    def from_settings(cls, s: Settings) -> RedisGuard:
        return cls(s.redis_call_timeout_ms / 1000, s.redis_breaker_failures, s.redis_breaker_seconds)

    @property
    def is_open(self) -> bool:
        """True while calls are skipped (open, or half-open with its trial call in flight)."""
        return self._open_until is not None and (self._trial or self._now() < self._open_until)

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` within the bound; `RedisTimeout` or `RedisUnavailable` as described above."""
        if self.is_open:
            REDIS_UNAVAILABLE.labels("breaker_open").inc()
            raise RedisUnavailable("circuit breaker open")
        trial = self._trial = self._open_until is not None
        started, token = self._now(), _INSIDE_GUARD.set(True)
        try:
            async with asyncio.timeout(self.call_timeout):
                result = await call()
        except TimeoutError:
            self._failed(started, trial, "timeout")
            if trial:
                raise RedisUnavailable("no answer to the trial call") from None
            raise RedisTimeout(f"no answer within {self.call_timeout:.3f} s") from None
        except (RedisError, OSError) as error:
            self._failed(started, trial, "error")
            raise RedisUnavailable(repr(error)) from error
        finally:
            _INSIDE_GUARD.reset(token)
            self._trial = self._trial and not trial
        self._failures = 0
        if trial:
            self._open_until = None
            REDIS_BREAKER_OPEN.set(0)
            logger.info("redis answers again: circuit breaker closed")
        return result

    def _failed(self, started: float, trial: bool, reason: str) -> None:
        REDIS_UNAVAILABLE.labels(reason).inc()
        if started >= self._last_failure:  # sent after the last counted failure: a new one
            self._failures += 1
            self._last_failure = self._now()
        if trial or (self._open_until is None and self._failures >= self.threshold):
            if not trial:
                REDIS_BREAKER_OPEN.set(1)
                logger.warning("redis unavailable: circuit breaker open", extra={"reason": reason})
            self._open_until = self._now() + self.breaker_seconds
