"""The one Redis client per process, and the key prefix every key goes through."""

from __future__ import annotations

from arq.connections import ArqRedis

from shared.settings import Settings
from shared.tracing import instrument_redis


def create_redis(settings: Settings) -> ArqRedis:
    """Create the process's client; short timeouts so a dead Redis fails fast, not slowly.

    It is an `ArqRedis` (a `redis.asyncio.Redis` subclass) so the same client also enqueues jobs.
    Its commands are traced (names only, arguments masked) when tracing is on.
    """
    settings.require("redis_url")
    instrument_redis()
    from shared.email_queue import deserialize_job, email_queue_name, serialize_job

    client: ArqRedis = ArqRedis.from_url(
        str(settings.redis_url),
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        decode_responses=False,
    )
    client.job_serializer = serialize_job
    client.job_deserializer = deserialize_job
    client.default_queue_name = email_queue_name(settings)
    return client


def redis_key(settings: Settings, *parts: str) -> str:
    """Build a namespaced key: `<prefix><part>:<part>...`."""
    return settings.redis_key_prefix + ":".join(parts)
