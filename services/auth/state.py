"""What the auth handlers work with: the process's state (settings, database, Redis, keys,
password pool, limiter, the TOTP secret box) and where the request came from, each a dependency
(`AuthDep`, `Client`) that FastAPI solves once per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth.factors.crypto import SecretBox
from services.auth.keys import KeyRing
from services.auth.passwords import Passwords
from shared.ratelimit import RateLimiter, client_ip
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


async def get_state(request: Request) -> AuthState:
    """The service state built in the app lifespan."""
    state: AuthState = request.app.state.auth
    return state


AuthDep = Annotated[AuthState, Depends(get_state)]


async def get_client(request: Request, state: AuthDep) -> ClientInfo:
    """The caller's address (through trusted proxies only) and user agent."""
    agent = request.headers.get("user-agent")
    return ClientInfo(ip=client_ip(request, state.settings), user_agent=agent[:512] if agent else None)


Client = Annotated[ClientInfo, Depends(get_client)]
