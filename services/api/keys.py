"""The public keys access tokens are verified with: from settings, or the auth service's JWKS.

Only public keys are ever parsed here (shared.access_tokens cannot load a private key), so
the api process cannot mint tokens whatever its environment holds. With `JWKS_URL` the
document is fetched at start-up (best effort), cached, refreshed when older than
`MAX_AGE_SECONDS` and refetched when a token names an unknown `kid` (key rotation), at most
once per `MIN_REFETCH_SECONDS` once keys are known, so garbage `kid`s cannot turn the api into a
JWKS flooder (before that, waiting requests share one fetch).
A failed fetch keeps the previous keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.api.metrics import JWKS_FETCHES
from shared.access_tokens import keys_by_kid, keys_from_jwks, parse_public_key, token_kid
from shared.errors import Unauthorized
from shared.settings import Settings, SettingsError

logger = logging.getLogger("blockbot.api.keys")

MAX_AGE_SECONDS = 300.0
MIN_REFETCH_SECONDS = 30.0
FETCH_TIMEOUT_SECONDS = 5.0


def static_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """Parse JWT_PUBLIC_KEYS, failing start-up (without echoing values) on a bad entry."""
    try:
        return keys_by_kid(parse_public_key(value) for value in settings.jwt_public_keys)
    except (ValueError, TypeError):
        raise SettingsError(["JWT_PUBLIC_KEYS: each entry must be an Ed25519 public key"]) from None


class PublicKeys:
    """Keys by kid; `for_kid` refreshes from the JWKS when needed."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._static = static_keys(settings)
        self._jwks_url = str(settings.jwks_url) if settings.jwks_url is not None else None
        if not self._static and self._jwks_url is None:
            raise SettingsError(["JWKS_URL or JWT_PUBLIC_KEYS: required for the api service"])
        self._http = http
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
        """The keys to verify a token naming `kid` with, refetching the JWKS if unknown or stale."""
        if self._jwks_url is None:
            return self._keys
        arrived = time.monotonic()
        stale = arrived - self._fetched_at > MAX_AGE_SECONDS
        if not stale and kid in self._keys:
            return self._keys
        if self._fetched and arrived - self._attempted_at < MIN_REFETCH_SECONDS:
            return self._keys
        async with self._lock:
            if self._fetched:
                due = time.monotonic() - self._attempted_at >= MIN_REFETCH_SECONDS
            else:
                # No keys yet (auth was still starting): a fetch that began before this request
                # arrived may have failed before auth could issue the token, so try once more,
                # shared by every request that waited on the lock meanwhile. A time-based throttle
                # here refused the first token issued within a second of a failed start-up fetch.
                due = self._attempted_at < arrived
            if due:
                await self.refresh()
        return self._keys

    async def refresh(self) -> bool:
        """Fetch the JWKS once; keep the previous keys on failure."""
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
                logger.warning("JWKS fetch failed; keeping the cached keys", extra={"error": repr(error)})
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
