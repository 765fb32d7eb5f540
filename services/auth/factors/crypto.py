"""TOTP secrets at rest: AES-256-GCM under keys from TOTP_ENCRYPTION_KEYS, each named by a key id.

A sealed secret is stored with the id of the key that sealed it (the first 16 hex digits of the
key's SHA-256), so keys rotate like the signing keys: append a new key (it seals from then on),
keep the old ones while secrets still name them (each moves to the newest key when next used).
The user's id is the associated data: a ciphertext copied onto another user's row does not open.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.access_tokens import b64url_decode
from shared.settings import Environment, Settings, SettingsError

NONCE_BYTES = 12
# Development and tests only: public, so production refuses to start without real keys.
DEVELOPMENT_KEY = hashlib.sha256(b"blockbot development totp key (public, never for production)").digest()


class UnknownKey(Exception):
    """A secret sealed under a key that is no longer configured (or tampered with)."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


@dataclass(frozen=True)
class SecretBox:
    """The configured keys, newest last."""

    keys: tuple[bytes, ...]

    @property
    def current_kid(self) -> str:
        return key_id(self.keys[-1])

    def seal(self, plaintext: bytes, associated: bytes) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext) under the newest key."""
        nonce = os.urandom(NONCE_BYTES)
        return self.current_kid, nonce + AESGCM(self.keys[-1]).encrypt(nonce, plaintext, associated)

    def open(self, kid: str, sealed: bytes, associated: bytes) -> bytes:
        for key in self.keys:
            if key_id(key) == kid:
                try:
                    return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
                except InvalidTag:
                    raise UnknownKey(kid) from None
        raise UnknownKey(kid)


def load_secret_box(settings: Settings) -> SecretBox:
    """The keys of TOTP_ENCRYPTION_KEYS (SettingsError naming the variable when malformed); the
    public development key when none is set outside production."""
    values = [value.get_secret_value().strip() for value in settings.totp_encryption_keys]
    if not values:
        if settings.env is Environment.PRODUCTION:
            raise SettingsError(["TOTP_ENCRYPTION_KEYS: required for the auth service in production"])
        return SecretBox((DEVELOPMENT_KEY,))
    keys: list[bytes] = []
    for value in values:
        try:
            key = b64url_decode(value)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise SettingsError(["TOTP_ENCRYPTION_KEYS: each key is base64url of 32 bytes (`make secrets`)"])
        keys.append(key)
    return SecretBox(tuple(keys))
