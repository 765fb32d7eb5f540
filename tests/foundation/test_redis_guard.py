"""The Redis guard: a stalled process is not a Redis failure; a silent Redis trips the breaker."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.redis import GuardLimits, RedisGuard, RedisOverloaded, RedisUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(clock: Clock | None = None, **limits: float) -> RedisGuard:
    values = {"call_timeout": 0.15, "queue_timeout": 5.0, "breaker_seconds": 2.0, "concurrency": 4}
    values.update(limits)
    return RedisGuard(
        GuardLimits(
            call_timeout=values["call_timeout"],
            queue_timeout=values["queue_timeout"],
            breaker_seconds=values["breaker_seconds"],
            concurrency=int(values["concurrency"]),
        ),
        clock=clock,
    )


def answer_after(delay: float, value: str = "ok"):
    """A call whose answer arrives `delay` seconds after it starts (like a socket read)."""

    async def call() -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(delay, future.set_result, value)
        return await future

    return call


async def never() -> str:
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


async def test_a_stalled_loop_waits_for_the_answer_instead_of_failing():
    """The answer arrives in time but the loop is blocked past the deadline: not a Redis failure."""
    g = guard()

    async def stall() -> None:
        await asyncio.sleep(0.01)
        time.sleep(0.5)  # the whole loop is blocked across the 150 ms deadline

    staller = asyncio.create_task(stall())
    results = await asyncio.gather(*(g.run(answer_after(0.05)) for _ in range(4)))
    await staller
    assert results == ["ok"] * 4
    assert not g.is_open


async def test_a_silent_redis_is_unavailable_and_opens_the_breaker():
    clock = Clock()
    g = guard(clock)
    with pytest.raises(RedisUnavailable):
        await g.run(never)
    assert g.is_open
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    # While open, Redis is not even tried: the answer is immediate.
    with pytest.raises(RedisUnavailable, match="breaker"):
        await g.run(counted)
    assert calls == 0
    # After the open period one trial call goes through; its success closes the breaker.
    clock.now += 2.01
    assert await g.run(counted) == "ok"
    assert calls == 1 and not g.is_open


async def test_half_open_lets_one_trial_through_and_a_failed_trial_reopens():
    clock = Clock()
    g = guard(clock)
    with pytest.raises(RedisUnavailable):
        await g.run(never)
    clock.now += 2.01
    trial = asyncio.create_task(g.run(never))
    await asyncio.sleep(0)
    # Others are refused at once while the trial is in flight.
    with pytest.raises(RedisUnavailable, match="breaker"):
        await g.run(answer_after(0))
    with pytest.raises(RedisUnavailable):
        await trial
    assert g.is_open  # the failed trial opened it again for a whole period
    clock.now += 1.0
    assert g.is_open


async def test_connection_errors_are_unavailable_at_once():
    g = guard()

    async def refused() -> str:
        raise RedisConnectionError("Connection refused")

    with pytest.raises(RedisUnavailable, match="refused"):
        await g.run(refused)
    assert g.is_open


async def test_no_free_slot_in_time_is_overload_not_unavailability():
    g = guard(call_timeout=5.0, queue_timeout=0.1, concurrency=1)
    holder = asyncio.create_task(g.run(answer_after(0.3)))  # before its first 0.5 s wake-up
    await asyncio.sleep(0)
    with pytest.raises(RedisOverloaded):
        await g.run(answer_after(0))
    assert not g.is_open
    assert await holder == "ok"


async def test_a_busy_loop_does_not_make_a_live_redis_unavailable(redis_settings):
    """The compose test's overshoot: a loop whose rounds take ~120 ms (60 tasks of 2 ms each)
    reads Redis' answers a few rounds late. That is slowness, never Redis being down."""
    from shared.redis import REDIS_UNAVAILABLE, create_redis

    g = RedisGuard(GuardLimits(call_timeout=0.15, queue_timeout=60.0, breaker_seconds=2.0, concurrency=24))
    client = create_redis(redis_settings, g)
    key = redis_settings.redis_key_prefix + "busy"
    await client.set(key, b"1")  # connected before the loop gets busy
    before = REDIS_UNAVAILABLE.labels("timeout")._value.get()
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            time.sleep(0.002)
            await asyncio.sleep(0)

    workers = [asyncio.create_task(busy()) for _ in range(60)]
    try:
        results = await asyncio.gather(*(client.get(key) for _ in range(100)))
    finally:
        stop.set()
        await asyncio.gather(*workers)
        await client.aclose()
    assert results == [b"1"] * 100
    assert REDIS_UNAVAILABLE.labels("timeout")._value.get() == before
    assert not g.is_open


async def test_a_late_answer_while_redis_answers_others_is_waited_for():
    """Redis answered other calls after this one began: it is alive, this process is slow to read
    this answer. Waiting (up to the overload bound) is right; failing open would overshoot."""
    g = guard(call_timeout=0.15)

    async def others() -> None:
        for _ in range(10):
            assert await g.run(answer_after(0.01)) == "ok"
            await asyncio.sleep(0.02)

    late = asyncio.create_task(g.run(answer_after(0.4, "late")))
    await others()
    assert await late == "late"
    assert not g.is_open


async def test_a_call_left_waiting_gives_up_when_another_finds_redis_silent():
    """Once the breaker opens (another call got no answer), a waiting call stops waiting at once."""
    g = guard(call_timeout=0.15)
    waiting = asyncio.create_task(g.run(never))
    await g.run(answer_after(0.01))  # an answer after `waiting` began: it keeps waiting
    with pytest.raises(RedisUnavailable):
        await g.run(never)  # nothing answered since this one began: Redis is silent
    with pytest.raises(RedisUnavailable):
        await waiting


async def test_a_call_given_up_on_because_the_breaker_opened_does_not_extend_it():
    """Only the call that found Redis silent sets the breaker's time; those it releases do not."""
    clock = Clock()
    g = guard(clock, call_timeout=0.15, breaker_seconds=2.0)
    waiting = asyncio.create_task(g.run(never))
    await g.run(answer_after(0.01))  # `waiting` has seen an answer: it does not judge Redis itself
    with pytest.raises(RedisUnavailable):
        await g.run(never)  # opens the breaker until 1002.0 on the fake clock
    clock.now = 1001.9  # `waiting` is released after this, by its next timer tick
    with pytest.raises(RedisUnavailable):
        await waiting
    clock.now = 1002.1
    assert not g.is_open  # half-open on time: the next call may try Redis
