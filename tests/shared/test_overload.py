"""Overload shed at the edge: requests beyond the in-flight bound get a 503 problem at once; the
event loop's lag is exported."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shared.errors import install_problem_handlers
from shared.overload import install_overload_guards, watch_loop_lag


def held_app(limit: int) -> tuple[FastAPI, asyncio.Event, asyncio.Event]:
    """An app whose `/slow` waits for `release`; `entered` is set once a request is inside."""
    app = FastAPI()
    install_problem_handlers(app)
    install_overload_guards(app, limit)
    entered, release = asyncio.Event(), asyncio.Event()

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"ok": "yes"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app, entered, release


async def test_a_request_beyond_the_bound_is_a_503_problem_and_the_bound_frees_again():
    app, entered, release = held_app(limit=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        first = asyncio.create_task(client.get("/slow"))
        await entered.wait()
        shed = await client.get("/slow")
        assert shed.status_code == 503
        assert shed.headers["content-type"] == "application/problem+json"
        assert shed.headers["retry-after"] == "1"
        assert shed.json()["type"].endswith("/service-unavailable")
        assert (await client.get("/health")).status_code == 200  # probes are never shed
        release.set()
        assert (await first).status_code == 200
        assert (await client.get("/slow")).status_code == 200  # the slot was given back


async def test_no_bound_when_the_limit_is_zero():
    app, _entered, release = held_app(limit=0)
    release.set()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        statuses = [r.status_code for r in await asyncio.gather(*(client.get("/slow") for _ in range(20)))]
    assert statuses == [200] * 20


# A loop of its own: in the session's loop, the lag watchers of apps other tests left running
# write the same gauge, and one that wakes on time after the block overwrites the reading.
@pytest.mark.asyncio(loop_scope="function")
async def test_a_blocked_loop_shows_as_lag():
    watcher = asyncio.create_task(watch_loop_lag(interval=0.05))
    try:
        await asyncio.sleep(0.06)  # one quiet sample first
        time.sleep(0.3)  # the whole loop is blocked
        lag = 0.0
        for _ in range(50):  # the watcher's first wake-up after the block records it
            await asyncio.sleep(0)
            lag = REGISTRY.get_sample_value("event_loop_lag_seconds") or 0.0
            if lag > 0.1:
                break
        assert lag > 0.1
    finally:
        watcher.cancel()
