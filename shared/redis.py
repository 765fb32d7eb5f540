"""The one Redis client per process, its guard (bounded waits, circuit breaker), and key prefixes.

Two different things look alike when a Redis call is slow, and they must not be confused:

- Redis is unreachable or frozen: the call fails (refused, reset) or gets no answer while this
  process is responsive. That is `RedisUnavailable`; callers fail open (api rate limits) or
  closed (auth), and the circuit breaker skips Redis for a few seconds so every request after
  the first answers at once instead of waiting out another timeout.
- This process is overloaded: its event loop (or the machine) is so busy that the answer, which
  may already be in the socket buffer, is not read before the deadline, or every connection is
  busy. Waiting for a free connection or for the loop to catch up is NOT a Redis failure: the
  call keeps waiting (bounded), and only if the answer still has not come does it raise
  `RedisOverloaded`, which callers turn into a 503 (load shedding), never into a pass.

A call's bound is counted in turns of the event loop (a busy loop's turns are slow, and the
answer needs a few of them to be read), and a missing answer only means "Redis is silent" when no
other call was answered meanwhile: while Redis answers others, this process is just slow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
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

REDIS_UNAVAILABLE = Counter(
    "redis_unavailable_total",
    "Guarded Redis calls that got no answer, by reason (error, timeout, breaker_open).",
    ["reason"],
)
REDIS_OVERLOADED = Counter(
    "redis_overloaded_total",
    "Guarded Redis calls given up because this process was too busy to get the answer in time.",
)
REDIS_BREAKER_OPEN = Gauge(
    "redis_breaker_open", "1 while the Redis circuit breaker skips Redis (after failures)."
)

# The client's own socket timeouts are a last resort, above the guard's bounds, so that a guarded
# call is always judged by the guard (which knows whether the loop was stalled) first.
SOCKET_TIMEOUT_SECONDS = 10.0
# A call's bound is counted in turns of the event loop, not in seconds: the call is given SLICES
# wake-ups, each at least call_timeout / SLICES apart. On a quiet machine that is call_timeout; on
# a busy one (a loop round of 50 ms, a process waiting for a CPU) it stretches with the load, since
# Redis' answer, already in the socket buffer, needs a few loop rounds to be read. Counting
# seconds instead judged a busy process's slowness as Redis being down, and the api failed open.
SLICES = 10
# Loop rounds allowed after the last slice for an answer read in that very round to complete.
CONFIRM_ROUNDS = 3


# Both are Redis connection errors, so every `except RedisError` (a 503, say) handles them too.
class RedisUnavailable(RedisConnectionError):
    """Redis gave no answer: unreachable, refusing, frozen, or skipped by the open breaker."""


class RedisOverloaded(RedisConnectionError):
    """This process could not get Redis' answer in time because it is itself overloaded."""


# Set inside a guarded call, so the commands it runs are not guarded a second time.
_INSIDE_GUARD: ContextVar[bool] = ContextVar("inside_redis_guard", default=False)


class _BreakerOpened(RedisUnavailable):
    """A call given up on because another call opened the breaker while it waited."""


class GuardedRedis(ArqRedis):
    """The client, with every single command run through the process's guard (when it has one).

    Pipelines and transactions (arq's enqueue) are sent as one unit by redis-py, past
    `execute_command`: run them through `guarded()` to bound them the same way.
    """

    guard: RedisGuard | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        run = super().execute_command
        if self.guard is None or _INSIDE_GUARD.get():
            return await run(*args, **options)  # type: ignore[no-untyped-call]
        return await self.guard.run(lambda: run(*args, **options))  # type: ignore[no-untyped-call]


async def guarded(client: object, call: Callable[[], Awaitable[T]]) -> T:
    """Run a multi-command unit (a pipeline, arq's enqueue) as one guarded call of `client`.

    Without this a frozen Redis would hold the unit until the 10 s socket timeout; with it the
    unit gets the same bound, breaker and overload rules as a single command. A client without
    a guard (the worker's, scripts') runs the call as it is.
    """
    guard = client.guard if isinstance(client, GuardedRedis) else None
    if guard is None or _INSIDE_GUARD.get():
        return await call()
    return await guard.run(call)


def create_redis(
    settings: Settings, guard: RedisGuard | None = None, *, socket_timeout: float = SOCKET_TIMEOUT_SECONDS
) -> ArqRedis:
    """Create the process's client over a bounded, blocking connection pool.

    Connections are reused; at most `redis_max_connections` exist, and a caller waits for a free
    one instead of opening yet another (connections are opened outside the pool's lock, so a
    frozen Redis does not serialise every caller behind one connect). It is an `ArqRedis` so the
    same client also enqueues jobs. Its commands are traced (names only) when tracing is on.
    With a `guard` (the HTTP services' request path) each command goes through it.
    """
    settings.require("redis_url")
    instrument_redis()
    pool = BlockingConnectionPool.from_url(
        str(settings.redis_url),
        max_connections=settings.redis_max_connections,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        decode_responses=False,
    )
    client = GuardedRedis(connection_pool=pool)
    client.guard = guard
    client.auto_close_connection_pool = True  # closing the client closes its pool (as from_pool)
    client.job_serializer = serialize_job
    client.job_deserializer = deserialize_job
    client.default_queue_name = email_queue_name(settings)
    return client


def email_queue_name(settings: Settings) -> str:
    """The arq queue the worker drains, namespaced by the deployment's key prefix."""
    return settings.redis_key_prefix + "queue:email"


def serialize_job(value: dict[str, Any]) -> bytes:
    """arq jobs (and results) as JSON: never pickle, since whoever can write to Redis writes jobs."""
    return orjson.dumps(value)


def deserialize_job(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(data)
    return value


def redis_key(settings: Settings, *parts: str) -> str:
    """Build a namespaced key: `<prefix><part>:<part>...`."""
    return settings.redis_key_prefix + ":".join(parts)


@dataclass(frozen=True)
class GuardLimits:
    """The guard's bounds, in seconds."""

    call_timeout: float  # no answer within this while the loop is responsive: Redis is down
    queue_timeout: float  # overall bound when the process is overloaded: shed (503)
    breaker_seconds: float  # how long Redis is skipped after a failure
    concurrency: int  # guarded calls in flight at once (below the pool size: room for others)

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardLimits:
        return cls(
            call_timeout=settings.redis_call_timeout_ms / 1000,
            queue_timeout=settings.redis_queue_timeout_ms / 1000,
            breaker_seconds=settings.redis_breaker_seconds,
            concurrency=max(1, settings.redis_max_connections * 3 // 4),
        )


class RedisGuard:
    """Runs Redis calls with a loop-aware deadline, a bound on concurrency and a circuit breaker."""

    def __init__(self, limits: GuardLimits, *, clock: Callable[[], float] | None = None) -> None:
        self.limits = limits
        self._clock = clock  # the breaker's time (tests); None: the event loop's monotonic clock
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._open_until: float | None = None  # set while open or half-open
        self._trial_running = False
        # Counters, not times: a call compares them with their values when it started.
        self._successes = 0  # guarded calls answered
        self._openings = 0  # times the breaker opened

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisGuard:
        return cls(GuardLimits.from_settings(settings))

    @property
    def is_open(self) -> bool:
        """True while calls are skipped (open, or half-open with the trial call in flight)."""
        if self._open_until is None:
            return False
        return self._trial_running or self._now() < self._open_until

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run `call()`; raise `RedisUnavailable` or `RedisOverloaded` as described above."""
        self._refuse_if_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.queue_timeout
        if self._slots.locked():
            try:
                # Waiting for a free slot is queueing in this process, not a Redis failure.
                async with asyncio.timeout(self.limits.queue_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                REDIS_OVERLOADED.inc()
                raise RedisOverloaded("no free Redis slot in time") from None
        else:
            await self._slots.acquire()  # free: returns at once, no timer needed
        try:
            self._refuse_if_open()  # it may have opened while this call queued
        except RedisUnavailable:
            self._slots.release()
            raise
        trial = self._open_until is not None  # half-open: this call tries Redis for everyone
        self._trial_running = trial
        try:
            result = await self._bounded(call, deadline)
        except _BreakerOpened:
            raise  # another call opened the breaker; its time is not extended
        except RedisUnavailable as error:
            self._opened(error)
            raise
        finally:
            if trial:
                self._trial_running = False
            self._slots.release()
        self._successes += 1
        if trial:
            self._closed()
        return result

    def _refuse_if_open(self) -> None:
        if self.is_open:
            REDIS_UNAVAILABLE.labels("breaker_open").inc()
            raise RedisUnavailable("circuit breaker open")

    async def _bounded(self, call: Callable[[], Awaitable[T]], deadline: float) -> T:
        """Await the call in this task, watched by a timer; see `_Watch` for the verdicts."""
        loop = asyncio.get_running_loop()
        token = _INSIDE_GUARD.set(True)
        watch = _Watch(self, loop, deadline)
        try:
            async with asyncio.timeout(None) as scope:
                watch.start(scope)
                try:
                    return await call()
                finally:
                    watch.stop()
        except TimeoutError:
            if watch.verdict == "overloaded":
                REDIS_OVERLOADED.inc()
                raise RedisOverloaded("process too busy to read Redis' answer in time") from None
            if watch.verdict == "breaker_open":
                REDIS_UNAVAILABLE.labels("breaker_open").inc()
                raise _BreakerOpened("circuit breaker opened while this call waited") from None
            if watch.verdict == "unavailable":
                REDIS_UNAVAILABLE.labels("timeout").inc()
                raise RedisUnavailable(f"no answer within {self.limits.call_timeout:.3f} s") from None
            raise
        except (RedisError, OSError) as error:
            REDIS_UNAVAILABLE.labels("error").inc()
            raise RedisUnavailable(repr(error)) from error
        finally:
            _INSIDE_GUARD.reset(token)

    def _opened(self, error: RedisUnavailable) -> None:
        self._openings += 1
        was_open = self._open_until is not None
        self._open_until = self._now() + self.limits.breaker_seconds
        if not was_open:
            REDIS_BREAKER_OPEN.set(1)
            logger.warning(
                "redis unavailable: circuit breaker open",
                extra={"error": str(error), "breaker_seconds": self.limits.breaker_seconds},
            )

    def _closed(self) -> None:
        self._open_until = None
        REDIS_BREAKER_OPEN.set(0)
        logger.info("redis answers again: circuit breaker closed")


class _Watch:
    """The timer beside one guarded call: decides, at its wake-ups, whether to give up on it.

    - SLICES wake-ups (then CONFIRM_ROUNDS loop rounds) without an answer, while no other call
      was answered since this one began: Redis is silent, "unavailable".
    - Other calls were answered meanwhile: Redis is alive and this process is slow to read; the
      call keeps waiting up to the overload deadline, then "overloaded" (a 503, never a pass).
    - The breaker opened meanwhile (another call found Redis silent): "breaker_open" at once, a
      `RedisUnavailable` that leaves the breaker's time as the opening call set it.
    """

    def __init__(self, guard: RedisGuard, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self.guard = guard
        self.loop = loop
        self.deadline = deadline
        self.verdict: str | None = None
        self._step = guard.limits.call_timeout / SLICES
        self._slices = SLICES
        self._successes = guard._successes
        self._openings = guard._openings
        self._scope: asyncio.Timeout | None = None
        self._handle: asyncio.TimerHandle | asyncio.Handle | None = None

    def start(self, scope: asyncio.Timeout) -> None:
        self._scope = scope
        self._handle = self.loop.call_later(self._step, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _give_up(self, verdict: str) -> None:
        self.verdict = verdict
        self._handle = None
        assert self._scope is not None
        self._scope.reschedule(self.loop.time())  # the call's task gets TimeoutError now

    def _tick(self) -> None:
        if self.guard._openings != self._openings:
            return self._give_up("breaker_open")
        if self.loop.time() >= self.deadline:
            return self._give_up("overloaded")
        self._slices -= 1
        if self._slices > 0 or self.guard._successes != self._successes:
            self._handle = self.loop.call_later(self._step, self._tick)
        else:
            self._handle = self.loop.call_soon(self._confirm, CONFIRM_ROUNDS)

    def _confirm(self, rounds: int) -> None:
        if self.guard._successes != self._successes:  # answered meanwhile: alive, keep waiting
            self._handle = self.loop.call_later(self._step, self._tick)
        elif rounds > 0:
            self._handle = self.loop.call_soon(self._confirm, rounds - 1)
        else:
            self._give_up("unavailable")
