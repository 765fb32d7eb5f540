"""The one "Redis failure -> 503" rule, and session revocation's two Redis policies."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.errors import ServiceUnavailable
from shared.redis_errors import redis_or_503


def test_redis_failures_become_503_with_the_given_detail():
    for error in (RedisConnectionError("down"), TimeoutError("slow"), ConnectionRefusedError()):
        with pytest.raises(ServiceUnavailable) as caught, redis_or_503("Queue down."):
            raise error
        assert caught.value.status == 503 and caught.value.detail == "Queue down."
        assert caught.value.__cause__ is error


def test_other_errors_pass_through_untouched():
    with pytest.raises(KeyError), redis_or_503():
        raise KeyError("not redis")
