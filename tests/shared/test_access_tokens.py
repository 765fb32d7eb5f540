"""The verified-claims cache: a token is verified once, kept no longer than its exp, bounded."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared import access_tokens
from shared.access_tokens import ClaimsCache, jwk_thumbprint, token_kid
from shared.errors import Unauthorized
from shared.settings import Settings, load_settings
from tests.helpers import access_claims

KEY = Ed25519PrivateKey.generate()
KID = jwk_thumbprint(KEY.public_key())
KEYS = {KID: KEY.public_key()}


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings() -> Settings:
    return load_settings(redis_url="redis://127.0.0.1:1/0")


def mint(ttl: int = 900, key: Ed25519PrivateKey = KEY, **overrides: Any) -> str:
    claims = access_claims(ttl, **overrides)
    return jwt.encode(
        claims, key, algorithm="EdDSA", headers={"kid": jwk_thumbprint(key.public_key()), "typ": "at+jwt"}
    )


def authenticate(cache: ClaimsCache, token: str, settings: Settings) -> access_tokens.AccessClaims:
    """What the api does per request (minus Redis): cached claims, or verify and keep."""
    kid, claims = cache.lookup(token)
    if claims is not None and kid in KEYS:
        return claims
    return cache.verify(token, kid, KEYS, settings)


def test_a_token_is_verified_once_for_all_its_requests(settings, decodes):
    cache = ClaimsCache(clock=Clock())
    token = mint()
    first = authenticate(cache, token, settings)
    assert [authenticate(cache, token, settings) for _ in range(5)] == [first] * 5
    assert decodes == [token]


def test_claims_are_not_kept_past_exp(settings, decodes):
    clock = Clock()
    cache = ClaimsCache(clock=clock)
    token = mint(ttl=60)
    claims = authenticate(cache, token, settings)
    clock.now = claims.expires_at - 1
    assert cache.lookup(token)[1] == claims
    clock.now = claims.expires_at
    assert cache.lookup(token) == (KID, None)
    assert len(cache) == 0
    # Verified again (PyJWT checks exp on its own clock, with leeway), but not kept: the cache
    # never holds claims at or past their exp.
    assert cache.verify(token, KID, KEYS, settings) == claims
    assert len(cache) == 0
    assert decodes == [token, token]


def test_an_expired_token_is_refused_not_served_from_the_cache(settings):
    cache = ClaimsCache()
    token = mint(ttl=-(settings.jwt_leeway_seconds + 5))
    with pytest.raises(Unauthorized):
        authenticate(cache, token, settings)
    assert len(cache) == 0


def test_the_cache_is_bounded_least_recently_used_out(settings, decodes):
    cache = ClaimsCache(max_entries=2, clock=Clock())
    a, b, c = mint(), mint(), mint()
    authenticate(cache, a, settings)
    authenticate(cache, b, settings)
    authenticate(cache, a, settings)  # a is now the most recent
    authenticate(cache, c, settings)  # evicts b
    assert len(cache) == 2
    assert cache.lookup(a)[1] is not None and cache.lookup(c)[1] is not None
    assert cache.lookup(b)[1] is None
    assert decodes == [a, b, c]


def test_a_forged_signature_over_cached_claims_is_a_miss_and_refused(settings):
    cache = ClaimsCache(clock=Clock())
    token = mint()
    authenticate(cache, token, settings)
    header, payload, _ = token.split(".")
    forged = f"{header}.{payload}.{mint(key=Ed25519PrivateKey.generate()).split('.')[2]}"
    assert cache.lookup(forged) == (KID, None)
    with pytest.raises(Unauthorized):
        authenticate(cache, forged, settings)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "e30.e30.",
        "bm90IGpzb24.e30.x",
        jwt.encode({"sub": "x"}, "secret-secret-secret-secret-1234", algorithm="HS256", headers={"kid": KID}),
    ],
)
def test_a_malformed_header_or_another_algorithm_is_refused_before_any_verification(token, decodes):
    with pytest.raises(Unauthorized):
        token_kid(token)
    assert decodes == []
