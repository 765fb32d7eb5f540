"""What the api handlers work with: settings, database, Redis, public keys, limiter, windows."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.api.keys import PublicKeys
from services.api.limits import RatePolicy
from shared.access_tokens import ClaimsCache
from shared.ratelimit import RateLimiter
from shared.settings import Settings


@dataclass
class ApiState:
    """One per process, built in the app lifespan (tests may swap `rate_policy`)."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    public_keys: PublicKeys
    limiter: RateLimiter
    rate_policy: RatePolicy
    claims_cache: ClaimsCache
