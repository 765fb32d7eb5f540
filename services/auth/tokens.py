"""Minting access tokens (EdDSA JWTs). Only the auth service holds private keys."""

from __future__ import annotations

import secrets
import time
from uuid import UUID

import jwt

from services.auth.factors.level import SessionLevel
from services.auth.keys import KeyRing
from shared.access_tokens import ACCESS_TOKEN_TYPE, ALGORITHM
from shared.settings import Settings


def mint_access_token(
    keyring: KeyRing,
    settings: Settings,
    *,
    user_id: UUID,
    org_id: UUID,
    role: str,
    session_id: UUID,
    level: SessionLevel,
    now: int | None = None,
) -> str:
    """Sign an access token for one session with the newest key, at the session's level."""
    issued = int(time.time()) if now is None else now
    key = keyring.signing
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "org": str(org_id),
        "role": role,
        "sid": str(session_id),
        "jti": secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + settings.access_token_ttl_seconds,
        "amr": list(level.amr),
        "acr": level.acr,
        "auth_time": level.auth_time,
    }
    return jwt.encode(
        claims,
        key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )
