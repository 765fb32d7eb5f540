"""Short-lived, single-use state in Redis: sign-in challenges and WebAuthn ceremony challenges.

A sign-in challenge is what a first factor yields for an account with a second factor: an
opaque token (only its SHA-256 names the Redis key) bound to that attempt: the user, the first
factor's level, the WebAuthn challenge offered with it, and its attempts. It dies on success
(deleted: exactly one caller finishes it), after SECOND_FACTOR_ATTEMPTS_PER_CHALLENGE attempts,
or after SECOND_FACTOR_CHALLENGE_TTL_SECONDS. It also records the user's credentials version: a
password reset since the first factor voids it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import UUID

from services.auth.factors.level import SessionLevel
from services.auth.state import AuthState
from shared.access_tokens import b64url_decode, b64url_encode
from shared.opaque_tokens import decode_token, new_token
from shared.redis import redis_key
from shared.redis_errors import redis_or_503

CEREMONY_TTL_SECONDS = 300

# One step, so that an attempt on a challenge another request has just ended (deleted) never
# recreates its key (without a TTL, reopening it): -1 when gone, 0 when out of attempts (then
# deleted), else the attempt's number.
_COUNT_ATTEMPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts > tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
return attempts
"""


class Attempt(Enum):
    COUNTED = "counted"
    EXHAUSTED = "exhausted"  # past the allowed number: the challenge is deleted
    GONE = "gone"  # expired, or ended by another request


@dataclass(frozen=True)
class Pending:
    """A first factor proven for an account with a second factor: no session yet."""

    challenge: str
    methods: list[str]
    expires_in: int
    webauthn: dict[str, Any] | None  # PublicKeyCredentialRequestOptions for its passkeys


@dataclass(frozen=True)
class Challenge:
    key: str
    user_id: UUID
    org_id: UUID
    method: str
    level: SessionLevel
    webauthn_challenge: bytes | None
    credentials_version: int


def _key(state: AuthState, digest: bytes) -> str:
    return redis_key(state.settings, "auth", "second-factor", digest.hex())


async def create(
    state: AuthState,
    *,
    user_id: UUID,
    org_id: UUID,
    method: str,
    level: SessionLevel,
    webauthn_challenge: bytes | None,
    credentials_version: int,
) -> str:
    token, digest = new_token()
    record = {
        "user": str(user_id),
        "org": str(org_id),
        "method": method,
        "level": json.dumps([list(level.amr), level.acr, level.auth_time]),
        "webauthn": b64url_encode(webauthn_challenge) if webauthn_challenge else "",
        "credentials_version": credentials_version,
        "attempts": 0,
    }
    ttl = state.settings.second_factor_challenge_ttl_seconds
    with redis_or_503():
        async with state.redis.pipeline(transaction=True) as pipe:
            pipe.hset(_key(state, digest), mapping=record)
            pipe.expire(_key(state, digest), ttl)
            await pipe.execute()
    return token


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def load(state: AuthState, token: str) -> Challenge | None:
    raw = decode_token(token)
    if raw is None:
        return None
    key = _key(state, hashlib.sha256(raw).digest())
    with redis_or_503():
        found: dict[bytes, bytes] = await state.redis.hgetall(key)  # type: ignore[misc]
    if not found:
        return None
    fields = {_text(k): _text(v) for k, v in found.items()}
    try:
        amr, acr, auth_time = json.loads(fields["level"])
        return Challenge(
            key=key,
            user_id=UUID(fields["user"]),
            org_id=UUID(fields["org"]),
            method=fields["method"],
            level=SessionLevel(tuple(amr), str(acr), int(auth_time)),
            webauthn_challenge=b64url_decode(fields["webauthn"]) if fields.get("webauthn") else None,
            credentials_version=int(fields["credentials_version"]),
        )
    except (KeyError, ValueError, TypeError):
        # Not a whole record (e.g. only the attempts counter of a key being deleted): no challenge.
        return None


async def remaining_seconds(state: AuthState, challenge: Challenge) -> int:
    with redis_or_503():
        ttl = int(await state.redis.ttl(challenge.key))
    return max(ttl, 0)


async def count_attempt(state: AuthState, challenge: Challenge) -> Attempt:
    """Count one attempt on a live challenge (never recreating an ended one)."""
    limit = state.settings.second_factor_attempts_per_challenge
    with redis_or_503():
        result = int(await state.redis.eval(_COUNT_ATTEMPT, 1, challenge.key, str(limit)))  # type: ignore[misc]
    if result < 0:
        return Attempt.GONE
    return Attempt.EXHAUSTED if result == 0 else Attempt.COUNTED


async def consume(state: AuthState, challenge: Challenge) -> bool:
    """End the challenge; True for the one caller that ended it."""
    with redis_or_503():
        return bool(await state.redis.delete(challenge.key))


# --- WebAuthn ceremonies -----------------------------------------------------------------------


def _ceremony_key(state: AuthState, kind: str, name: str) -> str:
    return redis_key(state.settings, "auth", "webauthn", kind, name)


async def put_ceremony(state: AuthState, kind: str, name: str, challenge: bytes) -> None:
    with redis_or_503():
        await state.redis.set(_ceremony_key(state, kind, name), challenge, ex=CEREMONY_TTL_SECONDS)


async def take_ceremony(state: AuthState, kind: str, name: str) -> bytes | None:
    """The ceremony's challenge, once (GETDEL): a second answer to it finds nothing."""
    with redis_or_503():
        value = await state.redis.getdel(_ceremony_key(state, kind, name))
    return value if isinstance(value, bytes) else None
