"""Failed API-key lookups per client network, bounded before the database.

Each presented key that is well formed costs a database statement (`credential.verify`), so
guessing keys would cost one per guess. Refused lookups (unknown id, wrong secret, revoked,
expired) count against the client network's window (`RATELIMIT_API_KEY_FAILURES_PER_MINUTE`;
an IPv4 address or an IPv6 /64, shared.ratelimit.client_network); once it is full, every key
request from that network is a 429 before any database work, until the window has room again.

A network that has had no refusal in this process lately is not checked at all (the window is
read only for networks this process saw fail within the window's period), so a well-behaved
bot pays no extra Redis round trip; a guesser's first refusal in each process marks it. Redis
down fails open, like the api's other limits.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from fastapi import Request

from services.api.api_keys import credential as api_key
from services.api.api_keys.credential import InvalidApiKey, KeyCredential, KeyPrincipal
from services.api.state import ApiState
from shared.errors import RateLimited
from shared.ratelimit import Window, client_ip, client_network

SCOPE = "api_key_failures"
PERIOD_SECONDS = 60
# Networks this process saw refused lately ((Redis key prefix, network) -> when), oldest first,
# bounded; the prefix keeps apart deployments sharing a process (tests).
_REMEMBERED = 10_000
_failed_lately: OrderedDict[tuple[str, str], float] = OrderedDict()


class KeyLookupsLimited(RateLimited):
    default_detail = "Too many refused API keys from this network; retry later."


def request_network(request: Request, state: ApiState) -> str:
    """The client network of the request (X-Forwarded-For only from trusted proxies)."""
    return client_network(client_ip(request, state.settings))


def _remember_failure(state: ApiState, network: str) -> None:
    key = (state.settings.redis_key_prefix, network)
    _failed_lately[key] = time.monotonic()
    _failed_lately.move_to_end(key)
    while len(_failed_lately) > _REMEMBERED:
        _failed_lately.popitem(last=False)


def _failed_within_period(state: ApiState, network: str) -> bool:
    seen = _failed_lately.get((state.settings.redis_key_prefix, network))
    return seen is not None and time.monotonic() - seen < PERIOD_SECONDS


def _none_failed_lately() -> bool:
    """True when this process remembers no refusal within the window's period, from any network."""
    if not _failed_lately:
        return True
    newest = next(reversed(_failed_lately.values()))
    return time.monotonic() - newest >= PERIOD_SECONDS


async def check_key_lookup_budget(state: ApiState, network: str) -> None:
    """429 when `network`'s refused lookups have filled its window; records nothing."""
    if not _failed_within_period(state, network):
        return
    limit = state.settings.ratelimit_api_key_failures_per_minute
    # Cost 0 against a limit one lower: refused exactly when `limit` failures are counted.
    window = Window(SCOPE, network, limit - 1, PERIOD_SECONDS)
    decision = await state.limiter.check_fail_open([window], cost=0)
    if decision is not None and not decision.allowed:
        raise KeyLookupsLimited(headers={"Retry-After": str(decision.retry_after or 1)})


async def count_failed_lookup(state: ApiState, network: str) -> None:
    """Count one refused lookup against `network`'s window."""
    _remember_failure(state, network)
    limit = state.settings.ratelimit_api_key_failures_per_minute
    await state.limiter.check_fail_open([Window(SCOPE, network, limit, PERIOD_SECONDS)])


async def verify_within_budget(request: Request, state: ApiState, credential: KeyCredential) -> KeyPrincipal:
    """`credential.verify`, refused with a 429 before the database while the request's network
    has too many refused lookups, and counting a refusal against it.

    The network (address parsing, trusted-proxy checks) is worked out only when it is needed:
    when this process saw a refusal lately, or for this request's own refusal.
    """
    if not _none_failed_lately():
        await check_key_lookup_budget(state, request_network(request, state))
    try:
        return await api_key.verify(state.engine, credential)
    except InvalidApiKey:
        await count_failed_lookup(state, request_network(request, state))
        raise
