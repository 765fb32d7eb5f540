"""Fixtures for foundation tests: a Redis client on the run's server with its own key prefix."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import pytest

from shared.redis import create_redis
from shared.settings import Settings


@pytest.fixture
async def redis_settings(make_settings: Callable[..., Settings], redis_prefix: str) -> Settings:
    return make_settings("api", redis_key_prefix=f"{redis_prefix}{secrets.token_hex(3)}:")


@pytest.fixture
async def redis_client(redis_settings: Settings) -> AsyncIterator[object]:
    client = create_redis(redis_settings)
    yield client
    await client.aclose()
