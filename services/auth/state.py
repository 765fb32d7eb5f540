"""What the auth handlers work with: settings, database, Redis, keys, password pool, limiter,
the TOTP secret box."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth.factors.crypto import SecretBox
from services.auth.keys import KeyRing
from services.auth.passwords import Passwords
from shared.ratelimit import RateLimiter
from shared.settings import Settings


@dataclass
class AuthState:
    """One per process, built in the app lifespan."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    keyring: KeyRing
    passwords: Passwords
    limiter: RateLimiter
    secret_box: SecretBox  # TOTP secrets at rest


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, for sessions and the audit log."""

    ip: str | None
    user_agent: str | None
