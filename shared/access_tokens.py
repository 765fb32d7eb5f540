"""Access-token verification with public keys only, and the revoked-session markers in Redis.

The auth service signs access tokens (services/auth/tokens.py); every other service verifies
them with this module, which can parse and use PUBLIC keys only, so importing it never gives
the power to mint. Verification pins the algorithm (EdDSA), the issuer and audience, requires
every claim, checks expiry with a small leeway and finds the key by `kid` (RFC 7638 JWK
thumbprint). A token of a revoked session (logout, reuse detected, password reset) is rejected
through a Redis marker keyed by its `sid`, kept for the token's remaining lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.asyncio import Redis

from shared.errors import Unauthorized
from shared.redis import guarded
from shared.roles import Role
from shared.settings import Settings

Key = TypeVar("Key")  # an Ed25519 key class (this module reads public ones only)
ALGORITHM = "EdDSA"
# RFC 9068 media type of access tokens, set by the auth service. Verification refuses any other
# explicit type (a future ID token or link token signed with the same keys is not an access
# token); a plain "JWT" or no `typ` is still accepted for tokens minted before it was set.
ACCESS_TOKEN_TYPE = "at+jwt"
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt", "jwt"})
REQUIRED_CLAIMS = ("iss", "aud", "sub", "org", "role", "sid", "jti", "iat", "exp")
ROLES = frozenset(Role)
INVALID_TOKEN_DETAIL = "The access token is invalid or expired."


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    value = value.strip()
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk_thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256) of the OKP JWK: the required members, sorted, no spaces."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(raw_public_bytes(key))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The JWK published in the JWKS for one public key."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url_encode(raw_public_bytes(key)),
        "kid": jwk_thumbprint(key),
        "alg": ALGORITHM,
        "use": "sig",
    }


def parse_public_key(value: str) -> Ed25519PublicKey:
    """A public key given as PEM (SubjectPublicKeyInfo) or as base64url of its 32 raw bytes."""
    return decode_ed25519(
        value,
        pem=serialization.load_pem_public_key,
        raw=Ed25519PublicKey.from_public_bytes,
        kind=Ed25519PublicKey,  # type: ignore[type-abstract]  # mypy#4717: isinstance takes it
        what="public key",
    )


def decode_ed25519(
    value: str, *, pem: Callable[[bytes], object], raw: Callable[[bytes], Key], kind: type[Key], what: str
) -> Key:
    """An Ed25519 key from PEM (read by `pem`) or from base64url of its 32 raw bytes (`raw`).

    The one parser of key text; the private-key side (services/auth/keys.py) passes its loaders.
    """
    text = value.strip()
    if text.startswith("-----BEGIN"):
        key = pem(text.encode())
        if not isinstance(key, kind):
            raise ValueError(f"not an Ed25519 {what}")
        return key
    data = b64url_decode(text)
    if len(data) != 32:
        raise ValueError(f"an Ed25519 {what} is 32 bytes")
    return raw(data)


def keys_by_kid(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    return {jwk_thumbprint(key): key for key in keys}


def keys_from_jwks(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The usable keys of a JWKS document (OKP/Ed25519 only), indexed by their thumbprint.

    The kid is recomputed from the key material rather than trusted from the document.
    """
    found: dict[str, Ed25519PublicKey] = {}
    for jwk in document.get("keys", []):
        if not isinstance(jwk, Mapping):
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
            continue
        try:
            key = parse_public_key(str(jwk["x"]))
        except (KeyError, ValueError):
            continue
        found[jwk_thumbprint(key)] = key
    return found


@dataclass(frozen=True)
class AccessClaims:
    """A verified access token."""

    user_id: UUID
    org_id: UUID
    role: str
    session_id: UUID
    token_id: str
    issued_at: int
    expires_at: int
    # How and when the user authenticated (RFC 8176 `amr`, `acr`, OIDC `auth_time`). A token
    # without them is treated as the lowest level, authenticated at its epoch (never recent).
    amr: tuple[str, ...] = ()
    acr: str = "aal1"
    auth_time: int = 0


def token_kid(token: str) -> str:
    """Parse the header once (no PyJWT round trip): the `kid`, after checking `alg` and `typ`, or 401."""
    head, dot, _ = token.partition(".")
    try:
        if not dot:
            raise ValueError("not a JWS")
        header = orjson.loads(b64url_decode(head))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise Unauthorized(INVALID_TOKEN_DETAIL) from None
    if not isinstance(header, dict):
        raise Unauthorized(INVALID_TOKEN_DETAIL)
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        raise Unauthorized(INVALID_TOKEN_DETAIL)
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES):
        raise Unauthorized(INVALID_TOKEN_DETAIL)
    return kid


def verify_access_token(
    token: str, keys: Mapping[str, Ed25519PublicKey], settings: Settings, kid: str | None = None
) -> AccessClaims:
    """Verify signature, algorithm, kid, iss, aud, exp (with leeway) and claims, or raise 401.

    `kid` is the token's, when the caller already parsed the header (`token_kid`).
    Does not check revocation (that needs Redis): call `is_session_revoked` as well.
    """
    if kid is None:
        kid = token_kid(token)
    if kid not in keys:
        raise Unauthorized(INVALID_TOKEN_DETAIL)
    try:
        claims = jwt.decode(
            token,
            keys[kid],
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
        )
        role = claims["role"]
        if role not in ROLES or not isinstance(claims["jti"], str):
            raise Unauthorized(INVALID_TOKEN_DETAIL)
        return AccessClaims(
            user_id=UUID(str(claims["sub"])),
            org_id=UUID(str(claims["org"])),
            role=str(role),
            session_id=UUID(str(claims["sid"])),
            token_id=claims["jti"],
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            **_authentication_claims(claims),
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Unauthorized(INVALID_TOKEN_DETAIL) from None


def _authentication_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """`amr`, `acr` and `auth_time` when present and well-formed (they are optional)."""
    found: dict[str, Any] = {}
    amr = claims.get("amr")
    if isinstance(amr, list) and all(isinstance(item, str) for item in amr):
        found["amr"] = tuple(amr)
    acr = claims.get("acr")
    if isinstance(acr, str):
        found["acr"] = acr
    auth_time = claims.get("auth_time")
    if isinstance(auth_time, int) and not isinstance(auth_time, bool):
        found["auth_time"] = auth_time
    return found


class ClaimsCache:
    """Verified claims by SHA-256 of the token: bounded (least recently used out), never past `exp`.

    A token is verified (Ed25519, claims) once, not on each of its requests. Only what the
    signature proves is kept; the revocation marker is NOT cached: callers check it on every
    request. An entry is used only while its `kid` is still a current key (rotation).
    """

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[str, AccessClaims]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> tuple[str, AccessClaims | None]:
        """(kid, cached claims) on a hit; on a miss (kid from the parsed header, None), or 401."""
        key = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(key)
        if entry is not None:
            if entry[1].expires_at > self._clock():
                self._entries.move_to_end(key)
                return entry
            del self._entries[key]
        return token_kid(token), None

    def verify(
        self, token: str, kid: str, keys: Mapping[str, Ed25519PublicKey], settings: Settings
    ) -> AccessClaims:
        """Verify `token` (a miss of `lookup`) and keep its claims until they expire."""
        claims = verify_access_token(token, keys, settings, kid)
        # Within the leeway after exp a token still verifies, but is not kept: it is expiring.
        if claims.expires_at > self._clock():
            self._entries[hashlib.sha256(token.encode()).digest()] = (kid, claims)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return claims


def revoked_sid_key(settings: Settings, sid: UUID | str) -> str:
    """The Redis key whose presence means: every access token of session `sid` is dead."""
    return f"{settings.redis_key_prefix}auth:revoked-sid:{sid}"


def revocation_ttl_seconds(settings: Settings) -> int:
    """How long a marker must live: the longest an access token of the session can still be valid."""
    return settings.access_token_ttl_seconds + settings.jwt_leeway_seconds + 5


async def is_session_revoked(redis: Redis, settings: Settings, sid: UUID | str) -> bool:
    """True when the session was revoked; Redis errors propagate (the caller picks fail mode)."""
    return bool(await redis.exists(revoked_sid_key(settings, sid)))


async def mark_sessions_revoked(
    redis: Redis, settings: Settings, sids: Iterable[UUID | str], ttl: int | None = None
) -> None:
    """Set the revoked markers for `sids` (one pipeline round trip)."""
    seconds = ttl if ttl is not None else revocation_ttl_seconds(settings)
    sid_list = list(sids)
    if not sid_list:
        return

    async def write_markers() -> None:
        async with redis.pipeline(transaction=False) as pipe:
            for sid in sid_list:
                pipe.set(revoked_sid_key(settings, sid), b"1", ex=seconds)
            await pipe.execute()

    await guarded(redis, write_markers)
