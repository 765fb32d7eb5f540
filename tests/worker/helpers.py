"""Helpers of the worker tests: burst runs of the worker, and metric samples."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import REGISTRY

from services.worker.jobs import RetryPolicy
from services.worker.main import WorkerOptions, create_worker
from shared.settings import Settings

FAST_RETRY = RetryPolicy(base_seconds=0.05, max_seconds=0.2)


async def drain(settings: Settings, **option_overrides: Any) -> Any:
    """Run a worker in this process until the queue is empty (arq burst mode), then close it."""
    values: dict[str, Any] = {
        "metrics": False,
        "burst": True,
        "handle_signals": False,
        "retry": FAST_RETRY,
        "poll_delay_seconds": 0.02,
    }
    values.update(option_overrides)
    worker = create_worker(settings, WorkerOptions(**values))
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return worker


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
