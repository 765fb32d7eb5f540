"""Overload shed at the edge: a bound on requests in flight, and the event loop's lag as a gauge.

A request beyond `MAX_REQUESTS_IN_FLIGHT` is answered 503 (problem+json, `Retry-After: 1`) before
any work: a burst waits in the clients and the gateway, not inside this process, where every
queued request would slow down all the others. Liveness probes and scrapes are never shed. The
loop's lag (how late a timer fires) is how a saturated process looks from inside.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import ServiceUnavailable, error_response

REQUESTS_SHED = Counter("http_requests_shed_total", "Requests refused (503) because too many were in flight.")
EVENT_LOOP_LAG = Gauge(
    "event_loop_lag_seconds", "How late the event loop ran a timer, last sample.", multiprocess_mode="max"
)
OVERLOADED_DETAIL = "The service is overloaded; retry shortly."
NEVER_SHED = frozenset({"/health", "/metrics"})
LAG_SAMPLE_SECONDS = 0.5


class ConcurrencyLimit:
    """Pure ASGI middleware; install it with `install_overload_guards` (inside the request context)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            REQUESTS_SHED.inc()
            shed = ServiceUnavailable(OVERLOADED_DETAIL, headers={"Retry-After": "1"})
            await error_response(shed, scope["path"])(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def watch_loop_lag(interval: float = LAG_SAMPLE_SECONDS) -> None:
    """Sample the loop's lag into `event_loop_lag_seconds` until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(interval)
        EVENT_LOOP_LAG.set(max(0.0, loop.time() - start - interval))


@asynccontextmanager
async def loop_lag_watched() -> AsyncIterator[None]:
    task = asyncio.create_task(watch_loop_lag())
    try:
        yield
    finally:
        task.cancel()


def install_overload_guards(app: FastAPI, max_in_flight: int) -> None:
    """Bound the requests in flight (0: no bound); innermost, so a 503 carries the request id and
    is counted and logged like any other answer."""
    if max_in_flight > 0:
        app.user_middleware.append(Middleware(ConcurrencyLimit, limit=max_in_flight))
