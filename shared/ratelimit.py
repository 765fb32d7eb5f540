"""Sliding-window rate limiting in Redis: several windows checked and recorded in one Lua call.

Algorithm: the sliding window counter. Each window key is a small hash holding the count of
the current fixed bucket and of the previous one; the estimate is
`previous * (unelapsed share of the bucket) + current`. Memory per key is constant (three small
integers, ~100 bytes) whatever the limit, unlike a sliding log that stores one member per
request. All windows are evaluated first and incremented only if every one allows the request,
so a request refused by the org window does not consume the user's quota. The clock is Redis'
own (`TIME`), so several app servers agree; tests may pass the time in instead (`clock`).

Accuracy at bucket edges: the previous bucket is assumed to have been spread evenly. A burst
that goes on past an edge is admitted at the refill rate (limit * elapsed / period: with
100/minute, one more request 0.6 s after the edge), which is the sliding window at work. Over
any rolling period the count can exceed the limit, because the previous bucket's requests may
all have come at its very end: each bucket records at most `limit`, and a rolling period spans
at most two, so the worst case is just under 2x the limit (see the README's figures).

Redis calls go through the process's `RedisGuard`: when Redis is unavailable the decision is
`None` (fail open, counted) or a 503 (fail closed); a call with no answer in time (the breaker
closed) sheds the request with a 503: it is never let through uncounted.

The same call can also report whether some other keys exist (`flag_keys`, e.g. the api's
revoked-session marker), so a request needs a single Redis round trip for both. Flags do not
change the decision or what is recorded; the caller decides what a present flag means.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from starlette.requests import Request

from shared.errors import RateLimited, ServiceUnavailable
from shared.redis import RedisGuard, RedisTimeout, RedisUnavailable
from shared.settings import Settings

logger = logging.getLogger("blockbot.ratelimit")

RATELIMIT_DECISIONS = Counter(
    "ratelimit_decisions_total",
    "Rate-limit decisions, by the deciding window's scope and the outcome.",
    ["scope", "outcome"],
)

# KEYS: one per window, then the flag keys. ARGV: cost, number of windows, the time in ms
# (negative: use Redis' TIME), then limit and period (ms) per window.
# Returns: allowed (1/0), index (1-based) of the deciding window, its limit, remaining,
# reset (ms), retry-after (ms, 0 when allowed), how many flag keys exist, then the first
# window's limit, remaining and reset (ms).
_LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cost = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local state = {}
local all_ok = true
local pick, pick_remaining, pick_retry = 1, math.huge, -1
for i = 1, n do
  local limit = tonumber(ARGV[2 * i + 2])
  local period = tonumber(ARGV[2 * i + 3])
  local bucket = math.floor(now / period)
  local h = redis.call('HMGET', KEYS[i], 'b', 'c', 'p')
  local b, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
  local cur, prev = 0, 0
  if b == bucket then cur, prev = c, p elseif b == bucket - 1 then prev = c end
  local elapsed = now - bucket * period
  local est = prev * (period - elapsed) / period + cur
  local ok = est + cost <= limit
  local remaining = math.max(0, math.floor(limit - est - (ok and cost or 0)))
  local retry = 0
  if not ok then
    all_ok = false
    if cost > limit then
      retry = period
    elseif cur + cost <= limit then
      retry = math.ceil(period * (1 - (limit - cur - cost) / prev) - elapsed)
    else
      retry = math.ceil((period - elapsed) + period * (1 - (limit - cost) / cur))
    end
    retry = math.max(retry, 1)
    if retry > pick_retry then pick, pick_retry = i, retry end
  elseif all_ok and remaining < pick_remaining then
    pick, pick_remaining = i, remaining
  end
  state[i] = {bucket, b, cur, prev, c, period, limit, remaining, elapsed}
end
if all_ok then
  for i = 1, n do
    local s = state[i]
    if s[2] == s[1] then
      redis.call('HINCRBY', KEYS[i], 'c', cost)
    else
      local prev_count = 0
      if s[2] == s[1] - 1 then prev_count = s[5] end
      redis.call('HSET', KEYS[i], 'b', s[1], 'c', cost, 'p', prev_count)
    end
    redis.call('PEXPIRE', KEYS[i], s[6] * 2)
  end
end
local flags = 0
if #KEYS > n then flags = redis.call('EXISTS', unpack(KEYS, n + 1)) end
local s, f = state[pick], state[1]
return {all_ok and 1 or 0, pick, s[7], s[8], s[6] - s[9], math.max(pick_retry, 0), flags,
        f[7], f[8], f[6] - f[9]}
"""


@dataclass(frozen=True)
class Window:
    """One limit: at most `limit` requests per `period_seconds` for `key`, reported as `scope`."""

    scope: str
    key: str
    limit: int
    period_seconds: int


@dataclass(frozen=True)
class Decision:
    """The outcome for the deciding window (the refusing one, or the one with least left)."""

    allowed: bool
    scope: str
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int | None
    flagged: bool = False  # one of the call's `flag_keys` exists


def _ceil_seconds(ms: int) -> int:
    return max(0, -(-ms // 1000))


class RateLimiter:
    """Checks windows atomically; one Redis round trip per call (EVALSHA), through the guard."""

    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        guard: RedisGuard | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = settings.redis_key_prefix + "rl:"
        self.guard = guard or RedisGuard.from_settings(settings)
        # Seconds since the epoch; None means Redis' own clock (production: servers agree).
        self.clock = clock
        self._script = redis.register_script(_LUA)  # its SHA, and loading it when Redis lost it
        # Decision counters by (scope, outcome), bound once: `labels()` hashes and locks per call.
        self._decisions: dict[tuple[str, str], Any] = {}

    async def check(
        self,
        windows: Sequence[Window],
        cost: int = 1,
        *,
        flag_keys: Sequence[str] = (),
        report_first: bool = False,
    ) -> Decision:
        """Evaluate and (if all pass) record the windows.

        Raises `RedisUnavailable` or `RedisTimeout` (see shared/redis.py). `flag_keys` (full
        Redis keys) are only tested for existence, in the same atomic call: `Decision.flagged`
        is true when at least one exists. With `report_first`, an allowed decision describes
        the first window rather than the one with least left (whose count may be none of the
        caller's business, e.g. another client's attempts on an address).
        """
        if not windows:
            raise ValueError("at least one window")
        keys = [f"{self.prefix}{w.scope}:{w.period_seconds}:{w.key}" for w in windows]
        keys += flag_keys
        now_ms = -1 if self.clock is None else int(self.clock() * 1000)
        args: list[int] = [cost, len(windows), now_ms]
        for w in windows:
            args += [w.limit, w.period_seconds * 1000]
        raw = await self.guard.run(lambda: self._evalsha(keys, args))
        values = [int(x) for x in raw]
        allowed, index, limit, remaining, reset_ms, retry_ms, flags = values[:7]
        if allowed and report_first:
            index, (limit, remaining, reset_ms) = 1, values[7:10]
        window = windows[index - 1]
        retry_after = None if allowed else max(1, _ceil_seconds(retry_ms))
        decision = Decision(
            allowed=bool(allowed),
            scope=window.scope,
            limit=limit,
            remaining=remaining,
            # When refused, the quota comes back when a retry will pass, not at the bucket's
            # end: a client trusting RateLimit-Reset must not retry into another 429.
            reset_seconds=_ceil_seconds(reset_ms) if retry_after is None else retry_after,
            retry_after=retry_after,
            flagged=flags > 0,
        )
        self._counter(decision.scope, "allowed" if allowed else "limited").inc()
        return decision

    async def _evalsha(self, keys: list[str], args: list[int]) -> Any:
        """EVALSHA, loading the script first if Redis does not have it (a restart, a flush).

        What redis-py's `AsyncScript.__call__` does, without its per-call pipeline check
        (an `isinstance` against a Protocol class, slow on the request path).
        """
        script = self._script
        try:
            return await self.redis.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[arg-type, misc]
        except NoScriptError:
            script.sha = await self.redis.script_load(script.script)
            return await self.redis.evalsha(script.sha, len(keys), *keys, *args)  # type: ignore[arg-type, misc]

    def _counter(self, scope: str, outcome: str) -> Any:
        counter = self._decisions.get((scope, outcome))
        if counter is None:  # scopes are the code's window names: a small, fixed set
            counter = self._decisions[(scope, outcome)] = RATELIMIT_DECISIONS.labels(scope, outcome)
        return counter

    async def check_fail_open(
        self, windows: Sequence[Window], *, flag_keys: Sequence[str] = (), cost: int = 1
    ) -> Decision | None:
        """Check; when Redis is unavailable let the request through (None) and count it.

        A call with no answer in time sheds the request (503) instead: it never passes uncounted.
        """
        try:
            return await self.check(windows, cost, flag_keys=flag_keys)
        except RedisUnavailable:
            RATELIMIT_DECISIONS.labels("all", "fail_open").inc()
            return None
        except RedisTimeout as error:
            raise _shed(error) from error

    async def check_fail_closed(self, windows: Sequence[Window], *, report_first: bool = False) -> Decision:
        """Check, refusing with 503 when Redis is unavailable (used where abuse matters most)."""
        try:
            return await self.check(windows, report_first=report_first)
        except RedisUnavailable as error:
            RATELIMIT_DECISIONS.labels("all", "fail_closed").inc()
            raise ServiceUnavailable(
                "Rate limiting is unavailable; retry later.", headers={"Retry-After": "1"}
            ) from error
        except RedisTimeout as error:
            raise _shed(error) from error


def _shed(error: RedisTimeout) -> ServiceUnavailable:
    RATELIMIT_DECISIONS.labels("all", "shed").inc()
    logger.warning("overloaded: request shed without its rate-limit decision", extra={"error": str(error)})
    return ServiceUnavailable("The service is overloaded; retry shortly.", headers={"Retry-After": "1"})


def ratelimit_headers(decision: Decision) -> dict[str, str]:
    """The RateLimit-* response headers for a decision."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
    }
    if decision.retry_after is not None:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


def raise_if_limited(decision: Decision) -> None:
    """Raise a 429 problem carrying Retry-After and the RateLimit-* headers."""
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit exceeded ({decision.scope}); retry in {decision.retry_after} s.",
            headers=ratelimit_headers(decision),
        )


def hash_identifier(value: str) -> str:
    """Key material for identifiers we must not store in clear (emails): a SHA-256 prefix."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


def client_ip(request: Request, settings: Settings) -> str:
    """The client's address: X-Forwarded-For is believed only when the peer is a trusted proxy.

    The header is read right to left, skipping trusted proxies, so a client cannot choose its
    own address by sending a forged left-most entry.
    """
    peer = request.client.host if request.client else "0.0.0.0"
    if not _trusted(peer, settings):
        return peer
    forwarded = request.headers.get("x-forwarded-for")
    if not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _valid_ip(hop):
            return peer
        if not _trusted(hop, settings):
            return hop
    return hops[0] if hops else peer


def _valid_ip(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


def _trusted(address: str, settings: Settings) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.trusted_proxies)


# IPv6 clients are keyed by /64: one subscriber usually holds a whole /64, so per address it
# would be 2^64 fresh budgets.
IPV6_NETWORK_PREFIX = 64


def client_network(ip: str | None) -> str:
    """The rate-limit key of a client address: the IPv4 address itself, or its IPv6 /64."""
    if not ip:
        return "unknown"
    try:
        address = ip_address(ip)
    except ValueError:
        return "unknown"
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network(f"{address}/{IPV6_NETWORK_PREFIX}", strict=False))
    return str(address)
