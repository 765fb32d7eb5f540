"""Opaque secrets (refresh tokens, one-time and invitation tokens): 32 random bytes, unpadded
base64url, stored only as SHA-256. The one way every service mints and reads them."""

from __future__ import annotations

import hashlib
import secrets

from shared.access_tokens import b64url_decode, b64url_encode

TOKEN_BYTES = 32


def new_token() -> tuple[str, bytes]:
    """A fresh token (unpadded base64url) and the digest that is stored."""
    raw = secrets.token_bytes(TOKEN_BYTES)
    return b64url_encode(raw), hashlib.sha256(raw).digest()


def decode_token(token: str) -> bytes | None:
    """The raw bytes of a presented token, or None when it cannot be one of ours."""
    if not token or len(token) > 64:
        return None
    try:
        raw = b64url_decode(token)
    except (ValueError, TypeError):
        return None
    return raw if len(raw) == TOKEN_BYTES else None


def token_hash(token: str) -> bytes | None:
    raw = decode_token(token)
    return None if raw is None else hashlib.sha256(raw).digest()
