"""The public keys access tokens are verified with: from settings, or the auth service's JWKS.

Only public keys are ever parsed here (shared.access_tokens cannot load a private key), so
the api process cannot mint tokens whatever its environment holds. With `JWKS_URL` the
document is fetched at start-up (best effort) and cached:

* the copy is revalidated once it is `JWKS_REVALIDATE_SECONDS` old (10 s), by the request that
  finds it so (the others keep the copy meanwhile), so a key the auth service stops publishing
  (a retired or compromised key) stops verifying tokens within seconds, with no restart;
* a token naming an unknown `kid` triggers a refetch too (key rotation), at most once per
  revalidation period once keys are known, so garbage `kid`s cannot turn the api into a JWKS
  flooder (before that, waiting requests share one fetch);
* a failed fetch keeps the previous keys only for a bounded time: a fetched key that no
  successful fetch has confirmed for `JWKS_TRUST_SECONDS` (10 minutes) verifies nothing, and a
  token naming it is a 503 (fail closed) until the auth service answers again. Keys from
  `JWT_PUBLIC_KEYS` are configuration and always trusted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.api.metrics import JWKS_FETCHES
from shared.access_tokens import keys_by_kid, keys_from_jwks, parse_public_key, token_kid
from shared.errors import ServiceUnavailable, Unauthorized
from shared.settings import Settings, SettingsError

logger = logging.getLogger("blockbot.api.keys")

FETCH_TIMEOUT_SECONDS = 5.0
UNCONFIRMED_DETAIL = "The token signing keys cannot be confirmed right now; retry shortly."


class KeysUnconfirmed(ServiceUnavailable):
    """The JWKS could not be fetched for longer than keys are trusted without one."""

    default_detail = UNCONFIRMED_DETAIL


def static_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """Parse JWT_PUBLIC_KEYS, failing start-up (without echoing values) on a bad entry."""
    try:
        return keys_by_kid(parse_public_key(value) for value in settings.jwt_public_keys)
    except (ValueError, TypeError):
        raise SettingsError(["JWT_PUBLIC_KEYS: each entry must be an Ed25519 public key"]) from None


class PublicKeys:
    """Keys by kid; `for_kid` revalidates from the JWKS when needed."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._static = static_keys(settings)
        self._jwks_url = str(settings.jwks_url) if settings.jwks_url is not None else None
        if not self._static and self._jwks_url is None:
            raise SettingsError(["JWKS_URL or JWT_PUBLIC_KEYS: required for the api service"])
        self._http = http
        self._trust = settings.jwks_trust_seconds
        # A copy due for revalidation is never older than the trust it may have.
        self._revalidate = min(settings.jwks_revalidate_seconds, self._trust)
        self._fetched: dict[str, Ed25519PublicKey] = {}
        self._keys: dict[str, Ed25519PublicKey] = dict(self._static)
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def uses_jwks(self) -> bool:
        return self._jwks_url is not None

    def current(self) -> Mapping[str, Ed25519PublicKey]:
        return self._keys

    async def for_token(self, token: str) -> Mapping[str, Ed25519PublicKey]:
        """The keys to verify `token` with (see `for_kid`); an unparsable token gets the current keys."""
        try:
            kid = token_kid(token)
        except Unauthorized:
            return self._keys  # verification will refuse it
        return await self.for_kid(kid)

    async def for_kid(self, kid: str) -> Mapping[str, Ed25519PublicKey]:
        """The keys to verify a token naming `kid` with, revalidating the JWKS if it is unknown
        or the copy is due; a 503 (`KeysUnconfirmed`) for a fetched key past its trust."""
        if self._jwks_url is None:
            return self._keys
        arrived = time.monotonic()
        fresh = arrived - self._fetched_at <= self._revalidate
        if fresh and kid in self._keys:
            return self._keys
        if self._fetched and arrived - self._attempted_at < self._revalidate:
            return self._confirmed(kid)  # tried lately (an unknown kid, or auth unreachable)
        if self._lock.locked() and kid in self._keys and self._trusted(arrived):
            # Another request is revalidating: its answer applies from the next request on,
            # and this one is not held up by the fetch.
            return self._keys
        async with self._lock:
            if self._fetched:
                due = time.monotonic() - self._attempted_at >= self._revalidate
            else:
                # No keys yet (auth was still starting): a fetch that began before this request
                # arrived may have failed before auth could issue the token, so try once more,
                # shared by every request that waited on the lock meanwhile. A time-based throttle
                # here refused the first token issued within a second of a failed start-up fetch.
                due = self._attempted_at < arrived
            if due:
                await self.refresh()
        return self._confirmed(kid)

    def _trusted(self, now: float) -> bool:
        return now - self._fetched_at <= self._trust

    def _confirmed(self, kid: str) -> Mapping[str, Ed25519PublicKey]:
        """The keys, unless `kid` is a fetched key no successful fetch confirmed for too long."""
        if kid in self._fetched and kid not in self._static and not self._trusted(time.monotonic()):
            raise KeysUnconfirmed(headers={"Retry-After": str(max(1, math.ceil(self._revalidate)))})
        return self._keys

    async def refresh(self) -> bool:
        """Fetch the JWKS once; keep the previous keys on failure (for at most their trust)."""
        if self._jwks_url is None or self._http is None:
            return False
        self._attempted_at = time.monotonic()
        try:
            response = await self._http.get(self._jwks_url, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
            fetched = keys_from_jwks(document if isinstance(document, dict) else {})
        except (httpx.HTTPError, ValueError) as error:
            JWKS_FETCHES.labels("error").inc()
            if self._fetched:
                logger.warning(
                    "JWKS fetch failed; keeping the cached keys until they are no longer trusted",
                    extra={"error": repr(error), "trust_seconds": self._trust},
                )
            else:
                # Nothing cached yet (typically the auth service is still starting): not a fault,
                # the keys are fetched again when the first token needs them.
                logger.info("JWKS not available yet; fetching on first use", extra={"error": repr(error)})
            return False
        JWKS_FETCHES.labels("ok").inc()
        self._fetched = fetched
        self._fetched_at = time.monotonic()
        self._keys = {**fetched, **self._static}
        return True
