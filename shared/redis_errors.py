"""What a Redis failure means to a request that cannot do without Redis: a 503, logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError

from shared.errors import ServiceUnavailable

logger = logging.getLogger("blockbot.redis")

# What a failed Redis call raises: the client's own errors, and socket errors it lets through.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)
UNAVAILABLE_DETAIL = "A dependency is unavailable; retry later."


@contextmanager
def redis_or_503(
    detail: str = UNAVAILABLE_DETAIL, *, event: str = "redis unavailable", **context: str
) -> Iterator[None]:
    """Turn a Redis failure inside the block into `ServiceUnavailable` (503), logged as `event`
    with `context` (never a secret)."""
    try:
        yield
    except REDIS_ERRORS as error:
        logger.error(event, extra={**context, "error": repr(error)})
        raise ServiceUnavailable(detail) from error
