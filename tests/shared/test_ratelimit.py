"""The shared rate limiter against a real Redis."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network

import pytest
from starlette.requests import Request

from shared.errors import RateLimited
from shared.ratelimit import (
    RateLimiter,
    Window,
    client_ip,
    hash_identifier,
    raise_if_limited,
    ratelimit_headers,
)


class Clock:
    """The limiter's time, set by the test (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# A bucket edge for every period used below (a multiple of 3600 s).
EDGE = 1_800_000_000.0


async def test_500_concurrent_requests_against_limit_100_let_exactly_100_through(
    redis_client, redis_settings
):
    # Redis' own clock (production): the burst may straddle a bucket edge, so a window of an
    # hour keeps the refill during the burst below one request (100 * burst / 3600 s < 1).
    limiter = RateLimiter(redis_client, redis_settings)
    window = [Window("user_endpoint", "u1:GET /me", 100, 3600)]
    decisions = await asyncio.gather(*(limiter.check(window) for _ in range(500)))
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 100
    assert sorted(d.remaining for d in allowed) == list(range(100))
    refused = [d for d in decisions if not d.allowed]
    # A full bucket frees a request only once the next bucket has drained 1/limit of it: up to
    # period * (1 + 1/limit) from now when the burst comes just after an edge (3636 s here).
    assert all(d.retry_after is not None and 1 <= d.retry_after <= 3636 for d in refused)


async def test_a_bucket_filled_just_after_its_edge_frees_a_request_after_the_next_edge(
    redis_client, redis_settings
):
    """One second into the hour, 100/hour used up: a request is next allowed 36 s (1/100 of the
    period) into the NEXT bucket, 3635 s from now, when the sliding estimate drops below 100."""
    clock = Clock(EDGE + 1)
    limiter = RateLimiter(redis_client, redis_settings, clock=clock)
    window = [Window("user_endpoint", "u-edge:GET /me", 100, 3600)]
    assert all([(await limiter.check(window)).allowed for _ in range(100)])
    refused = await limiter.check(window)
    assert not refused.allowed and refused.retry_after == 3600 - 1 + 36
    clock.now += 3600 - 1 + 36
    assert (await limiter.check(window)).allowed


async def test_window_slides_and_allows_again_after_the_period(redis_client, redis_settings):
    clock = Clock(EDGE + 0.25)
    limiter = RateLimiter(redis_client, redis_settings, clock=clock)
    window = [Window("ip", "10.0.0.1", 3, 1)]
    assert all([(await limiter.check(window)).allowed for _ in range(3)])
    refused = await limiter.check(window)
    assert not refused.allowed
    assert refused.retry_after is not None and 1 <= refused.retry_after <= 2
    # After two full periods both buckets have aged out: the whole quota is back.
    clock.now += 2.0
    assert all([(await limiter.check(window)).allowed for _ in range(3)])
    assert not (await limiter.check(window)).allowed


async def test_bucket_edge_admits_at_the_refill_rate(redis_client, redis_settings):
    """A burst going on past an edge gets limit * elapsed / period more (100/min: 1 per 0.6 s)."""
    clock = Clock(EDGE - 0.001)  # the quota is spent in the last millisecond of a bucket
    limiter = RateLimiter(redis_client, redis_settings, clock=clock)
    window = [Window("user_endpoint", "edge", 100, 60)]
    assert sum([(await limiter.check(window)).allowed for _ in range(150)]) == 100
    clock.now = EDGE + 0.599
    assert not (await limiter.check(window)).allowed
    clock.now = EDGE + 0.600
    assert (await limiter.check(window)).allowed
    assert not (await limiter.check(window)).allowed


async def test_rolling_period_overshoot_is_under_twice_the_limit(redis_client, redis_settings):
    """The worst case stated in the README: the whole quota spent at the end of a bucket."""
    clock = Clock(EDGE - 0.5)
    limiter = RateLimiter(redis_client, redis_settings, clock=clock)
    window = [Window("user_endpoint", "rolling", 100, 60)]
    assert sum([(await limiter.check(window)).allowed for _ in range(100)]) == 100
    # 59.3 s later the rolling minute (EDGE - 0.7, EDGE + 59.3] still holds those 100, and the
    # estimate 100 * 0.7 / 60 + cur admits cur up to 98.
    clock.now = EDGE + 59.3
    assert sum([(await limiter.check(window)).allowed for _ in range(150)]) == 98
    # At the next edge those 98 weigh as a full previous bucket: 2 more, 100 in that minute.
    clock.now = EDGE + 60.0
    assert sum([(await limiter.check(window)).allowed for _ in range(150)]) == 2


async def test_a_request_refused_by_one_window_is_recorded_in_none(redis_client, redis_settings):
    limiter = RateLimiter(redis_client, redis_settings)
    org = Window("org", "org-a", 2, 3600)
    user_1 = Window("user", "user-1", 10, 3600)
    user_2 = Window("user", "user-2", 10, 3600)
    assert (await limiter.check([org, user_1])).allowed
    assert (await limiter.check([org, user_1])).allowed
    refused = await limiter.check([org, user_2])
    assert not refused.allowed and refused.scope == "org"
    # user-2 was refused by the org window, so its own quota is untouched.
    fresh = await limiter.check([Window("user", "user-2", 10, 3600)])
    assert fresh.allowed and fresh.remaining == 9


async def test_deciding_window_is_the_one_with_least_remaining(redis_client, redis_settings):
    limiter = RateLimiter(redis_client, redis_settings)
    decision = await limiter.check(
        [
            Window("org", "o", 10_000, 3600),
            Window("user", "u", 1_000, 3600),
            Window("user_endpoint", "u:e", 100, 60),
        ]
    )
    assert decision.scope == "user_endpoint"
    assert (decision.limit, decision.remaining) == (100, 99)
    assert 0 < decision.reset_seconds <= 60
    headers = ratelimit_headers(decision)
    assert headers == {
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "99",
        "RateLimit-Reset": str(decision.reset_seconds),
    }


async def test_memory_per_key_is_bounded_at_large_limits(redis_client, redis_settings):
    limiter = RateLimiter(redis_client, redis_settings)
    window = [Window("org", "big-org", 10_000, 3600)]
    for _ in range(50):
        await limiter.check(window)
    key = f"{limiter.prefix}org:3600:big-org"
    small = await redis_client.memory_usage(key)
    await asyncio.gather(*(limiter.check(window) for _ in range(2000)))
    large = await redis_client.memory_usage(key)
    assert await redis_client.hlen(key) == 3
    # The same three integers whatever the count (a wider integer may cost a byte or two).
    assert large - small <= 8
    assert large < 256
    assert 0 < await redis_client.pttl(key) <= 7_200_000


async def test_raise_if_limited_is_a_429_with_retry_after(redis_client, redis_settings):
    limiter = RateLimiter(redis_client, redis_settings)
    window = [Window("email", hash_identifier("A@Example.com "), 1, 3600)]
    raise_if_limited(await limiter.check(window))
    with pytest.raises(RateLimited) as info:
        raise_if_limited(await limiter.check(window))
    assert info.value.status == 429
    assert int(info.value.headers["Retry-After"]) >= 1
    assert info.value.headers["RateLimit-Remaining"] == "0"


def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers})


def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(redis_settings):
    settings = redis_settings.model_copy(update={"trusted_proxies": [ip_network("10.0.0.0/8")]})
    # Untrusted peer: the header is ignored, whatever it says.
    assert client_ip(_request("203.0.113.9", "1.2.3.4"), settings) == "203.0.113.9"
    # Trusted proxy: the right-most untrusted hop is the client; a forged left entry is ignored.
    assert client_ip(_request("10.0.0.2", "6.6.6.6, 198.51.100.7"), settings) == "198.51.100.7"
    assert client_ip(_request("10.0.0.2", "198.51.100.7, 10.0.0.3"), settings) == "198.51.100.7"
    # Garbage in the header falls back to the peer.
    assert client_ip(_request("10.0.0.2", "not-an-ip"), settings) == "10.0.0.2"
    assert hash_identifier(" A@Example.COM") == hash_identifier("a@example.com")


async def test_flag_keys_are_reported_in_the_same_call_and_change_nothing(redis_client, redis_settings):
    limiter = RateLimiter(redis_client, redis_settings)
    flag = f"{redis_settings.redis_key_prefix}flag:{id(limiter)}"
    window = [Window("user", "flagged-user", 2, 3600)]
    first = await limiter.check(window, flag_keys=[flag])
    assert first.allowed and not first.flagged and first.remaining == 1
    await redis_client.set(flag, b"1", ex=60)
    second = await limiter.check(window, flag_keys=[f"{flag}:absent", flag])
    # The flag is reported; the window is evaluated and recorded exactly as without it.
    assert second.allowed and second.flagged and second.remaining == 0
    refused = await limiter.check(window, flag_keys=[flag])
    assert not refused.allowed and refused.flagged
    assert not (await limiter.check([Window("user", "other", 2, 3600)])).flagged


async def test_a_refused_decision_resets_when_a_retry_will_pass(redis_client, redis_settings):
    limiter = RateLimiter(redis_client, redis_settings)
    window = [Window("ip", "10.9.9.9", 2, 60)]
    assert (await limiter.check(window)).allowed
    assert (await limiter.check(window)).allowed
    refused = await limiter.check(window)
    assert not refused.allowed
    assert refused.retry_after is not None
    assert refused.reset_seconds == refused.retry_after
    headers = ratelimit_headers(refused)
    assert headers["RateLimit-Reset"] == headers["Retry-After"]
