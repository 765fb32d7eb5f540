"""API keys as a credential on the request path.

Per request with `Authorization: Bearer bb_...`:

1. `presented`: the key's shape and `<env>` checked, its keyed hash computed; no I/O.
2. `verify`: ONE statement, in a transaction of its own (`api_key_authenticate`), finds the row
   by public id AND hash (a wrong secret finds nothing, like an unknown id) and, for a live
   key, binds that statement to the key's org (RLS), reads the org and touches `last_used_at`
   at most once a minute. The hash is compared again here in constant time. Every request
   reads the row, so a revoked key is refused from the next request on. The request then runs
   bound to the verified org, as with a token. Refused lookups are bounded per client network
   before the database (`lookup_budget.py`).
3. `require_scope`: `read` allows GET and HEAD, `write` allows those and every other method.
   Whether the endpoint accepts keys at all is the route's choice (`Caller` vs `CurrentUser`).

Every refusal answers the same 401 body (no hint which part was wrong); the reason is counted
in `api_key_auth_failures_total`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.api_keys import queries
from services.api.metrics import KEY_AUTH_FAILURES
from shared.api_keys import PresentedKey, hashes_match, hashing_key, key_env, parse_key, secret_hash
from shared.errors import Forbidden, Unauthorized
from shared.settings import Settings

INVALID_KEY_DETAIL = "The API key is invalid, expired or revoked."
READ_METHODS = frozenset({"GET", "HEAD"})


class InvalidApiKey(Unauthorized):
    default_detail = INVALID_KEY_DETAIL


class InsufficientScope(Forbidden):
    slug = "insufficient-scope"
    default_detail = "This API key's scopes do not allow this method."


class ApiKeyNotAllowed(Forbidden):
    slug = "api-key-not-allowed"
    default_detail = (
        "API keys cannot use this endpoint: managing keys, members, invitations and the"
        " organization needs a person's access token."
    )


@dataclass(frozen=True)
class KeyCredential:
    """A presented key, shape-checked, with the hash to look it up by (not yet verified)."""

    key: PresentedKey
    presented_hash: bytes

    def __repr__(self) -> str:
        return f"KeyCredential(public_id={self.key.public_id!r})"


@dataclass(frozen=True)
class KeyPrincipal:
    """A verified API key: the org it acts for, with its scopes. Never a manager, never a user."""

    key_id: UUID
    org_id: UUID
    name: str
    scopes: tuple[str, ...]
    org_name: str
    org_created_at: datetime
    org_updated_at: datetime

    def allows(self, method: str) -> bool:
        if method.upper() in READ_METHODS:
            return bool({"read", "write"} & set(self.scopes))
        return "write" in self.scopes


def refuse(reason: str) -> InvalidApiKey:
    """The one 401 every bad key gets, counted by its reason."""
    KEY_AUTH_FAILURES.labels(reason).inc()
    return InvalidApiKey()


def presented(token: str, settings: Settings) -> KeyCredential:
    """Check the shape and deployment of a `bb_...` bearer credential and hash its secret."""
    key = parse_key(token)
    if key is None:
        raise refuse("malformed")
    if key.env != key_env(settings):
        raise refuse("wrong_env")
    return KeyCredential(key, secret_hash(hashing_key(settings), key.public_id, key.secret))


async def verify(engine: AsyncEngine, credential: KeyCredential) -> KeyPrincipal:
    """Verify the key (one statement); the key, its scopes and its org, or a 401."""
    row = await queries.authenticate(engine, credential.key.public_id, credential.presented_hash)
    if row is None:
        raise refuse("unknown")  # no key with this public id, or not with this secret
    if not hashes_match(row.secret_hash, credential.presented_hash):
        raise refuse("bad_secret")
    if row.revoked_at is not None:
        raise refuse("revoked")
    if not row.bound or row.org_name is None:
        raise refuse("expired")
    assert row.org_created_at is not None and row.org_updated_at is not None
    return KeyPrincipal(
        key_id=row.id,
        org_id=row.org_id,
        name=row.name,
        scopes=tuple(row.scopes),
        org_name=row.org_name,
        org_created_at=row.org_created_at,
        org_updated_at=row.org_updated_at,
    )


def require_scope(key: KeyPrincipal, method: str) -> None:
    """Refuse (403) a method the key's scopes do not cover."""
    if not key.allows(method):
        KEY_AUTH_FAILURES.labels("scope").inc()
        raise InsufficientScope()
