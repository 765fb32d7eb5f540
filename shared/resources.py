"""The long-lived clients a service process holds (engine, sessions, Redis) and their dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.db import create_engine, create_sessionmaker
from shared.redis import RedisGuard, create_redis
from shared.settings import Settings


@dataclass
class Resources:
    """One of each per process; created in the app lifespan, closed on shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    redis_guard: RedisGuard  # every request-path Redis call goes through it (bounded, breaker)

    @classmethod
    def create(cls, settings: Settings) -> Resources:
        engine = create_engine(settings)
        guard = RedisGuard.from_settings(settings)
        return cls(settings, engine, create_sessionmaker(engine), create_redis(settings, guard), guard)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


async def get_resources(request: Request) -> Resources:
    """The process's clients. Async on purpose: FastAPI runs sync dependencies in a thread."""
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
