"""Liveness and readiness routes every service mounts."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from shared.db import ping
from shared.errors import ServiceUnavailable
from shared.resources import ResourcesDep

router = APIRouter(tags=["health"])
READY_TIMEOUT_SECONDS = 2.0


@router.get("/health", summary="Liveness: the process is serving")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: PostgreSQL and Redis are reachable")
async def ready(resources: ResourcesDep) -> dict[str, object]:
    async def check_db() -> None:
        await ping(resources.engine)

    async def check_redis() -> None:
        await resources.redis.ping()

    results = await asyncio.gather(
        asyncio.wait_for(check_db(), READY_TIMEOUT_SECONDS),
        asyncio.wait_for(check_redis(), READY_TIMEOUT_SECONDS),
        return_exceptions=True,
    )
    checks = {
        name: "ok" if not isinstance(result, BaseException) else "unavailable"
        for name, result in zip(("database", "redis"), results, strict=True)
    }
    if any(value != "ok" for value in checks.values()):
        raise ServiceUnavailable("Not ready: a dependency is unreachable.", extra={"checks": checks})
    return {"status": "ready", "checks": checks}
