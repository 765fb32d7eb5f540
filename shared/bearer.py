"""The one parser of `Authorization: Bearer <token>` headers."""

from __future__ import annotations

MAX_TOKEN_LENGTH = 4096  # far above any access token we issue; bounds the work on garbage


def bearer_token(header: str | None) -> str | None:
    """The token of a Bearer authorization header; None when absent, another scheme or malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token
