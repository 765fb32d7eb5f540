"""Freezing a test's own redis-server (SIGSTOP) and thawing it (SIGCONT), for the outage tests of
every service: the server is never left frozen, however the test ends."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from devstack.redis import LocalRedis
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
