"""Access tokens: verified by an independent JOSE library against the JWKS; bad tokens refused."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from services.auth.factors.level import first_factor
from services.auth.keys import KeyRing, generate_seed, load_keyring, parse_private_key, signing_key
from services.auth.tokens import mint_access_token
from shared.access_tokens import jwk_thumbprint, verify_access_token
from shared.errors import Unauthorized
from shared.settings import SettingsError
from tests.auth.helpers import KEYRING, PREFIX, AuthApp, bearer, signup
from tests.helpers import access_claims


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
async def test_tokens_verify_with_joserfc_against_published_jwks(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, verified = await signup(client, auth.settings)
    access = verified.json()["access_token"]
    jwks = (await client.get(f"{PREFIX}/.well-known/jwks.json")).json()
    key_set = KeySet.import_key_set(jwks)
    token = jose_jwt.decode(access, key_set, algorithms=["EdDSA"])
    assert token.header["alg"] == "EdDSA"
    assert token.header["typ"] == "at+jwt"  # RFC 9068 access-token type
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    # kid is the RFC 7638 thumbprint, as joserfc computes it.
    assert token.header["kid"] == key_set.get_by_kid(token.header["kid"]).thumbprint()
    claims = token.claims
    assert set(claims) >= {"iss", "aud", "sub", "org", "role", "sid", "jti", "iat", "exp"}
    assert claims["iss"] == "blockbot-auth"
    assert claims["aud"] == "blockbot-api"
    assert claims["sub"] == verified.json()["user"]["id"]
    assert claims["org"] == verified.json()["org"]["id"]
    assert claims["role"] == "owner"
    assert claims["exp"] - claims["iat"] == 900
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "blockbot-auth"},
        aud={"essential": True, "value": "blockbot-api"},
        exp={"essential": True},
    ).validate(claims)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _sign(
    claims: dict[str, Any], key: Ed25519PrivateKey | None = None, kid: str | None = None, typ: str = "at+jwt"
) -> str:
    signer = KEYRING.signing
    return jwt.encode(
        claims,
        key or signer.private_key,
        algorithm="EdDSA",
        headers={"kid": kid or signer.kid, "typ": typ},
    )


def _bad_tokens() -> dict[str, str]:
    good = _sign(access_claims())
    header, payload, signature = good.split(".")
    other = Ed25519PrivateKey.generate()
    tampered_payload = _b64({**access_claims(), "role": "owner"})
    return {
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "bad signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': KEYRING.signing.kid})}.{payload}.",
        "alg HS256 with the public key": jwt.encode(
            access_claims(), "x" * 32, algorithm="HS256", headers={"kid": KEYRING.signing.kid}
        ),
        "wrong audience": _sign(access_claims(aud="someone-else")),
        "wrong issuer": _sign(access_claims(iss="https://evil.example")),
        "expired": _sign(access_claims(iat=int(time.time()) - 2000, exp=int(time.time()) - 100)),
        "unknown kid": _sign(access_claims(), key=other, kid=jwk_thumbprint(other.public_key())),
        "known kid, other key": _sign(access_claims(), key=other),
        "missing sid": _sign(access_claims(sid=None)),
        "missing jti": _sign(access_claims(jti=None)),
        "bad role": _sign(access_claims(role="root")),
        "another token type": _sign(access_claims(), typ="id+jwt"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize("case", list(_bad_tokens()))
async def test_bad_tokens_rejected(case: str, auth: AuthApp, client: httpx.AsyncClient) -> None:
    token = _bad_tokens()[case]
    with pytest.raises(Unauthorized):
        verify_access_token(token, KEYRING.public_keys, auth.settings)
    response = await client.get(f"{PREFIX}/sessions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_good_token_verifies_and_leeway_applies(make_settings: Any) -> None:
    settings = make_settings("api")
    token = _sign(access_claims(exp=int(time.time()) - 5))  # within the 30 s leeway
    claims = verify_access_token(token, KEYRING.public_keys, settings)
    assert claims.role == "member"
    # Tokens minted before `typ` was set (PyJWT's default "JWT") still verify.
    legacy = jwt.encode(
        access_claims(), KEYRING.signing.private_key, algorithm="EdDSA", headers={"kid": KEYRING.signing.kid}
    )
    assert jwt.get_unverified_header(legacy)["typ"] == "JWT"
    assert verify_access_token(legacy, KEYRING.public_keys, settings).role == "member"


async def test_rotation_publishes_all_keys_newest_signs(start_auth: Any, client: httpx.AsyncClient) -> None:
    old, new = generate_seed(), generate_seed()
    ring = KeyRing(tuple(signing_key(parse_private_key(s)) for s in (old, new)))
    async with start_auth(keyring=ring) as rotated, rotated.client() as c:
        jwks = (await c.get(f"{PREFIX}/.well-known/jwks.json")).json()
        assert {k["kid"] for k in jwks["keys"]} == {k.kid for k in ring.keys}
        _, verified = await signup(c, rotated.settings)
        header = jwt.get_unverified_header(verified.json()["access_token"])
        assert header["kid"] == ring.keys[-1].kid
        # A token signed by the older key still verifies while it is published.
        old_token = mint_access_token(
            KeyRing((ring.keys[0],)),
            rotated.settings,
            user_id=uuid.uuid4(),
            org_id=uuid.uuid4(),
            role="member",
            session_id=uuid.uuid4(),
            level=first_factor("password"),
        )
        assert verify_access_token(old_token, ring.public_keys, rotated.settings).role == "member"
        assert (await c.get(f"{PREFIX}/sessions", headers=bearer(verified))).status_code == 200


def test_keys_from_settings(make_settings: Any) -> None:
    seed = generate_seed()
    ring = load_keyring(make_settings("auth", jwt_private_keys=f"{generate_seed()},{seed}"))
    assert len(ring.keys) == 2
    assert ring.signing.kid == signing_key(parse_private_key(seed)).kid
    with pytest.raises(SettingsError) as bad:
        load_keyring(make_settings("auth", jwt_private_keys="c2hvcnQ"))
    assert "c2hvcnQ" not in str(bad.value)
    assert load_keyring(make_settings("auth", env="development")).ephemeral


def test_production_refuses_to_start_without_keys(make_settings: Any) -> None:
    settings = make_settings(
        "auth",
        env="production",
        cookie_secure=True,
        app_base_url="https://app.example.org",
        email_from="BlockBot <no-reply@blockbot.dev>",
    )
    from services.auth.app import create_auth_app

    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEYS"):
        create_auth_app(settings)
