"""Signing keys: parsing JWT_PRIVATE_KEYS, the development fallback, and a key generator.

JWT_PRIVATE_KEYS is a comma-separated list of Ed25519 private keys, newest LAST: the newest
signs, every key's public half is published in the JWKS so tokens signed before a rotation keep
verifying until they expire. Each key is the unpadded base64url of its 32-byte seed (what
`python -m services.auth.keys` prints) or a PKCS#8 PEM block. A key written `next:<key>` is
staged: published in the JWKS but not signing yet, so every verifier knows it before the first
token carries its kid (rotation: services/auth/key_rotation.py).

    python -m services.auth.keys          # prints a new key (base64url seed)
    python -m services.auth.keys --public # prints a new key, then its public JWK on stderr
"""

from __future__ import annotations

import logging
import secrets
import sys
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.access_tokens import b64url_encode, decode_ed25519, jwk_thumbprint, public_jwk
from shared.settings import Environment, Settings, SettingsError

logger = logging.getLogger("blockbot.auth.keys")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


STAGED_PREFIX = "next:"


@dataclass(frozen=True)
class KeyRing:
    """The keys of this process: `signing` (newest) signs; all, staged ones too, are published."""

    keys: tuple[SigningKey, ...]
    ephemeral: bool = False
    staged: tuple[SigningKey, ...] = ()

    @property
    def signing(self) -> SigningKey:
        return self.keys[-1]

    @cached_property
    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        return {key.kid: key.public_key for key in (*self.keys, *self.staged)}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        # Staged, then newest first: clients that try keys in order find the current one soon.
        ordered = (*reversed(self.staged), *reversed(self.keys))
        return {"keys": [public_jwk(key.public_key) for key in ordered]}


def generate_seed() -> str:
    """A new private key as the unpadded base64url of a random 32-byte seed."""
    return b64url_encode(secrets.token_bytes(32))


def parse_private_key(value: str) -> Ed25519PrivateKey:
    """A private key given as PEM (PKCS#8) or as base64url of its 32-byte seed."""
    return decode_ed25519(
        value,
        pem=lambda data: serialization.load_pem_private_key(data, password=None),
        raw=Ed25519PrivateKey.from_private_bytes,
        kind=Ed25519PrivateKey,  # type: ignore[type-abstract]  # mypy#4717: isinstance takes it
        what="private key",
    )


def signing_key(private_key: Ed25519PrivateKey) -> SigningKey:
    return SigningKey(kid=jwk_thumbprint(private_key.public_key()), private_key=private_key)


def load_keyring(settings: Settings) -> KeyRing:
    """Parse JWT_PRIVATE_KEYS; with none, production refuses and other environments improvise."""
    problems: list[str] = []
    keys: list[SigningKey] = []
    staged: list[SigningKey] = []
    for index, secret in enumerate(settings.jwt_private_keys, start=1):
        value = secret.get_secret_value().strip()
        target = staged if value.startswith(STAGED_PREFIX) else keys
        try:
            target.append(signing_key(parse_private_key(value.removeprefix(STAGED_PREFIX))))
        except (ValueError, TypeError):
            # Never echo the value: it is a private key.
            problems.append(f"JWT_PRIVATE_KEYS: key #{index} is not a valid Ed25519 key")
    if staged and not keys:
        problems.append("JWT_PRIVATE_KEYS: every key is staged (next:); one must sign")
    if problems:
        raise SettingsError(problems)
    if keys:
        return KeyRing(tuple(keys), staged=tuple(staged))
    if settings.env is Environment.PRODUCTION:
        raise SettingsError(["JWT_PRIVATE_KEYS: required in production (python -m services.auth.keys)"])
    logger.warning(
        "JWT_PRIVATE_KEYS is not set: using an ephemeral signing key; tokens die with this "
        "process and several auth processes will not accept each other's tokens"
    )
    return KeyRing((signing_key(Ed25519PrivateKey.generate()),), ephemeral=True)


def main(argv: list[str]) -> int:
    seed = generate_seed()
    print(seed)
    if "--public" in argv:
        import json

        print(json.dumps(public_jwk(parse_private_key(seed).public_key())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
