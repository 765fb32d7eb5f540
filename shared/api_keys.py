"""API keys: the `bb_<env>_<public id>_<secret>` format, generation and the keyed hash.

The secret is 32 random bytes (base64url, 43 characters): far beyond guessing, so a fast keyed
hash is the right store (a slow password hash would only slow every request). The HMAC key is
a server secret (API_KEY_HASH_SECRET), so a stolen table of hashes is useless without it. The
public id (16 hex digits) finds the row without a scan; `env` (`live`, `test`, ...) tells
which deployment a leaked key belongs to and lets secret scanners match the format.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from shared.settings import Environment, Settings, SettingsError

KEY_PREFIX = "bb_"
SCOPES = ("read", "write")
# Anchored, for parsing what a caller presents; the scanner pattern below is unanchored.
_KEY = re.compile(r"bb_([a-z0-9]{1,16})_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
# For secret scanners and log redaction: anything shaped like a key, even truncated; group 1 is
# the public prefix (safe to show), the rest is the secret.
KEY_PATTERN = re.compile(r"\b(bb_[a-z0-9]{1,16}_[0-9a-f]{16})_[A-Za-z0-9_-]+")
# Development and tests only; production refuses to start without its own secret.
_DEVELOPMENT_HASH_SECRET = b"blockbot-development-api-key-hash-secret-not-for-production"
MIN_HASH_SECRET_LENGTH = 32


@dataclass(frozen=True)
class PresentedKey:
    """A well-formed key as a caller presented it (not yet verified)."""

    env: str
    public_id: str
    secret: str = ""

    def __repr__(self) -> str:  # never the secret, even in a traceback
        return f"PresentedKey(env={self.env!r}, public_id={self.public_id!r})"


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: `token` is shown once to its creator, then only the hash is kept."""

    token: str
    public_id: str
    secret_hash: bytes
    prefix: str

    def __repr__(self) -> str:
        return f"NewKey(prefix={self.prefix!r})"


def key_env(settings: Settings) -> str:
    """This deployment's `<env>` label: API_KEY_ENV, else `live` in production, `test` elsewhere."""
    if settings.api_key_env:
        return settings.api_key_env
    return "live" if settings.env is Environment.PRODUCTION else "test"


def hashing_key(settings: Settings) -> bytes:
    """The HMAC key; production refuses to run without a real one."""
    secret = settings.api_key_hash_secret
    if secret is None:
        if settings.env is Environment.PRODUCTION:
            raise SettingsError(["API_KEY_HASH_SECRET: required in production for the api"])
        return _DEVELOPMENT_HASH_SECRET
    value = secret.get_secret_value().encode()
    if len(value) < MIN_HASH_SECRET_LENGTH:
        raise SettingsError([f"API_KEY_HASH_SECRET: must be at least {MIN_HASH_SECRET_LENGTH} characters"])
    return value


def secret_hash(key: bytes, public_id: str, secret: str) -> bytes:
    """HMAC-SHA256 of the secret, bound to its public id (a hash copied to another row fails)."""
    return hmac.new(key, f"{public_id}.{secret}".encode(), hashlib.sha256).digest()


def hashes_match(expected: bytes, presented: bytes) -> bool:
    """Constant-time comparison of two stored-form hashes."""
    return hmac.compare_digest(expected, presented)


def is_api_key(token: str) -> bool:
    """True when a bearer credential is meant as an API key (JWTs never start with `bb_`)."""
    return token.startswith(KEY_PREFIX)


def parse_key(token: str) -> PresentedKey | None:
    """Split a presented key into its parts, or None when it is not a well-formed key."""
    match = _KEY.fullmatch(token)
    if match is None:
        return None
    env, public_id, secret = match.groups()
    return PresentedKey(env=env, public_id=public_id, secret=secret)


def generate_key(env: str, hash_key: bytes) -> NewKey:
    """A new random key for deployment `env`, with the hash to store."""
    public_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    prefix = f"{KEY_PREFIX}{env}_{public_id}"
    return NewKey(
        token=f"{prefix}_{secret}",
        public_id=public_id,
        secret_hash=secret_hash(hash_key, public_id, secret),
        prefix=prefix,
    )
