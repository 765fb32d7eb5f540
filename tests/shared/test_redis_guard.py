"""The Redis guard: a call past its bound is shed; only consecutive failures open the breaker."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.redis import RedisGuard, RedisTimeout, RedisUnavailable, create_redis
from tests.redis_freeze import skips_redis


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(clock: Clock | None = None, failures: int = 3) -> RedisGuard:
    if clock is None:
        return RedisGuard(call_timeout=0.05, failures=failures, breaker_seconds=2.0)
    return RedisGuard(call_timeout=0.05, failures=failures, breaker_seconds=2.0, clock=clock)


def breaker_gauge() -> float | None:
    return REGISTRY.get_sample_value("redis_breaker_open")


async def answered() -> str:
    return "ok"


async def never() -> str:
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


async def refused() -> str:
    raise RedisConnectionError("Connection refused")


async def test_a_call_past_its_bound_is_shed_and_one_failure_does_not_open_the_breaker():
    g = guard()
    assert await g.run(answered) == "ok"
    with pytest.raises(RedisTimeout):
        await g.run(never)
    assert not await skips_redis(g)


async def test_consecutive_failures_open_the_breaker_which_then_skips_redis():
    clock = Clock()
    g = guard(clock)
    for _ in range(3):
        with pytest.raises(RedisTimeout):  # the breaker is closed: shed, never passed
            await g.run(never)
    assert breaker_gauge() == 1
    skipped = REGISTRY.get_sample_value("redis_unavailable_total", {"reason": "breaker_open"}) or 0.0
    assert await skips_redis(g)  # open: not even tried, and counted
    assert REGISTRY.get_sample_value("redis_unavailable_total", {"reason": "breaker_open"}) == skipped + 1
    clock.now += 2.01  # after the open period one trial call goes through; its success closes it
    assert not await skips_redis(g)
    assert breaker_gauge() == 0
    assert not await skips_redis(g)


async def test_a_success_between_failures_starts_the_count_again():
    """A process that still gets answers is not facing a Redis outage, however many calls fail."""
    g = guard()
    for _ in range(5):
        for _ in range(2):
            with pytest.raises(RedisTimeout):  # tried, and shed: the breaker stays closed
                await g.run(never)
        assert await g.run(answered) == "ok"
    assert not await skips_redis(g)


async def test_calls_that_fail_together_count_once():
    """A stalled process times out every call in flight at one moment: one failure, not many."""
    g = guard()
    outcomes = await asyncio.gather(*(g.run(never) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(o, RedisTimeout) for o in outcomes)
    for _ in range(2):  # two more, each sent after the previous failed: three in a row
        with pytest.raises(RedisTimeout):  # tried: the 20 did not open the breaker
            await g.run(never)
    assert await skips_redis(g)


async def trial_under_way(clock: Clock) -> tuple[RedisGuard, asyncio.Task[str]]:
    """A guard whose breaker opened, its period over, and the trial call sent (it never answers)."""
    g = guard(clock, failures=1)
    with pytest.raises(RedisTimeout):
        await g.run(never)
    clock.now += 2.01
    trial = asyncio.create_task(g.run(never))
    await asyncio.sleep(0)
    return g, trial


async def test_half_open_lets_one_trial_through_and_a_failed_trial_reopens():
    clock = Clock()
    g, trial = await trial_under_way(clock)
    assert await skips_redis(g)  # others are refused meanwhile
    with pytest.raises(RedisUnavailable):  # a failed trial is an outage, not a shed
        await trial
    clock.now += 1.0
    assert await skips_redis(g)  # for a whole period again
    clock.now += 1.01
    assert not await skips_redis(g)  # then the next trial, answered, closes it


async def test_a_cancelled_trial_does_not_keep_the_breaker_open():
    clock = Clock()
    g, trial = await trial_under_way(clock)
    trial.cancel()
    await asyncio.gather(trial, return_exceptions=True)
    clock.now += 2.01
    assert not await skips_redis(g)


async def test_refused_calls_are_unavailable_and_open_the_breaker():
    g = guard(failures=2)
    for _ in range(2):
        with pytest.raises(RedisUnavailable, match="refused"):
            await g.run(refused)
    assert await skips_redis(g)


async def test_a_busy_loop_never_opens_the_breaker_of_a_live_redis(redis_settings):
    """A loop whose rounds take ~120 ms (60 tasks of 2 ms) reads answers late: calls past the bound
    are shed, the rest answered, and Redis is never judged down."""
    g = RedisGuard(call_timeout=0.15, failures=3, breaker_seconds=2.0)
    client = create_redis(redis_settings, g)
    key = redis_settings.redis_key_prefix + "busy"
    await client.set(key, b"1")  # connected before the loop gets busy
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            time.sleep(0.002)
            await asyncio.sleep(0)

    workers = [asyncio.create_task(busy()) for _ in range(60)]
    try:
        results = await asyncio.gather(*(client.get(key) for _ in range(100)), return_exceptions=True)
    finally:
        stop.set()
        await asyncio.gather(*workers)
        await client.aclose()
    assert all(r == b"1" or isinstance(r, RedisTimeout) for r in results), results
    assert not await skips_redis(g)
