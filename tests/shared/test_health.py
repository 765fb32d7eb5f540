"""`/ready` turns 503 when PostgreSQL or Redis stops and back to 200 when it restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from devstack.postgres import EmbeddedPostgres
from devstack.redis import LocalRedis
from shared.app import create_app
from shared.settings import load_settings

pytestmark = pytest.mark.slow


async def ready_status(client: httpx.AsyncClient) -> tuple[int, dict[str, object]]:
    response = await client.get("/ready")
    return response.status_code, response.json()


async def test_ready_follows_postgres_and_redis_going_down_and_up(tmp_root: Path):
    # Private servers: these are stopped on purpose, whatever TEST_*_URL says. Under the run's
    # plain temporary directory, not pytest's tmp_path: PostgreSQL may run as another user when
    # we are root, and another pytest session resets /tmp/pytest-of-root to 0700 at its start.
    pg = await asyncio.to_thread(EmbeddedPostgres(tmp_root / "ready" / "pg").start)
    redis = LocalRedis(tmp_root / "ready" / "redis").start()
    try:
        settings = load_settings(
            env="test", database_url=pg.admin_url, redis_url=redis.url, service_name="ready-test"
        )
        app = create_app(title="t", settings=settings, routers=[])
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            assert (await ready_status(client))[0] == 200

            await asyncio.to_thread(pg.stop)
            status, body = await ready_status(client)
            assert status == 503
            assert body["checks"] == {"database": "unavailable", "redis": "ok"}
            assert (await client.get("/health")).status_code == 200  # liveness is unaffected

            await asyncio.to_thread(pg.start)
            assert (await ready_status(client))[0] == 200

            redis.stop()
            status, body = await ready_status(client)
            assert status == 503
            assert body["checks"] == {"database": "ok", "redis": "unavailable"}

            redis.start()
            for _ in range(20):  # the client reconnects on its next command
                if (await ready_status(client))[0] == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await ready_status(client))[0] == 200
    finally:
        redis.stop()
        await asyncio.to_thread(pg.destroy)
