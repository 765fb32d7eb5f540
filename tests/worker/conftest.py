"""Worker test fixtures: settings without a database, a fake Resend per test, burst runs."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis

from devstack.fake_resend import FakeResend
from shared.redis import create_redis
from shared.settings import Settings, load_settings


@pytest.fixture
def fake_resend() -> Iterator[FakeResend]:
    with FakeResend() as fake:
        yield fake


@pytest.fixture
def worker_settings(
    redis_url: str, redis_prefix: str, tmp_path: Path, fake_resend: FakeResend
) -> Callable[..., Settings]:
    """Settings for one test: its own key prefix (so its own queue), pointed at the fake; no
    database (the worker has none)."""
    prefix = f"{redis_prefix}w{secrets.token_hex(3)}:"

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "service_name": "worker",
            "redis_url": redis_url,
            "redis_key_prefix": prefix,
            "resend_api_key": fake_resend.api_key,
            "resend_api_url": fake_resend.url,
            "email_from": "BlockBot <no-reply@blockbot.test>",
            "dev_outbox_dir": tmp_path / "outbox",
            "email_max_tries": 5,
            "email_send_timeout_seconds": 5.0,
            "worker_concurrency": 4,
        }
        return load_settings(**{**values, **overrides})

    return build


@pytest.fixture
async def producer(redis_url: str) -> AsyncIterator[Callable[[Settings], ArqRedis]]:
    """The producers' client (auth/api use the same factory), closed after the test."""
    clients: list[ArqRedis] = []

    def make(settings: Settings) -> ArqRedis:
        client = create_redis(settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
