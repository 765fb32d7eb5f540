"""Freezing a test's own redis-server (SIGSTOP) and thawing it (SIGCONT), for the outage tests of
every service: the server is never left frozen, however the test ends. And `skips_redis`, which
tells from the outside whether a Redis guard's breaker is open."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from devstack.redis import LocalRedis
from shared.redis import RedisGuard, RedisUnavailable
from tests.outage_load import Load


@contextmanager
def frozen(server: LocalRedis) -> Iterator[None]:
    """Redis stopped (SIGSTOP: connections stay open, nothing answers) for the block."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def freeze_under_load(server: LocalRedis, load: Load, seconds: float = 3.0) -> None:
    """Redis frozen for `seconds` while `load` runs (its phase "frozen"), then "thawed"."""
    load.phase = "frozen"
    with frozen(server):
        await asyncio.sleep(seconds)
    load.phase = "thawed"


async def skips_redis(g: RedisGuard) -> bool:
    """Whether the guard's breaker is open: it refuses a call without running it (a closed one
    runs it, and its success counts)."""
    ran = False

    async def call() -> str:
        nonlocal ran
        ran = True
        return "ok"

    try:
        await g.run(call)
    except RedisUnavailable as error:
        refused = "breaker" in str(error)
    else:
        return False
    assert refused and not ran, "the guard ran the call and still raised"
    return True
