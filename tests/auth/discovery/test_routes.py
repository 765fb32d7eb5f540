"""The OpenID Connect discovery document: a JOSE library given the issuer finds the keys."""

from __future__ import annotations

import httpx
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.auth.helpers import PREFIX, AuthApp, signup

DISCOVERY = f"{PREFIX}/.well-known/openid-configuration"


async def test_document_names_the_issuer_keys_and_algorithm(auth: AuthApp, client: httpx.AsyncClient) -> None:
    response = await client.get(DISCOVERY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "public" in response.headers["cache-control"]
    document = response.json()
    assert document["issuer"] == auth.settings.jwt_issuer
    base = str(auth.settings.app_base_url).rstrip("/")
    assert document["jwks_uri"] == f"{base}{PREFIX}/.well-known/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == ["EdDSA"]
    assert document["subject_types_supported"] == ["public"]
    assert {"iss", "aud", "sub", "org", "role", "sid", "exp"} <= set(document["claims_supported"])


async def test_a_forged_host_does_not_move_the_jwks_uri(client: httpx.AsyncClient) -> None:
    honest = (await client.get(DISCOVERY)).json()
    forged = (
        await client.get(
            DISCOVERY,
            headers={
                "Host": "evil.example",
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Proto": "https",
            },
        )
    ).json()
    assert forged == honest
    assert "evil" not in forged["jwks_uri"]


async def test_tokens_verify_with_keys_found_through_discovery(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, verified = await signup(client, auth.settings)
    access = verified.json()["access_token"]
    document = (await client.get(DISCOVERY)).json()
    jwks_path = httpx.URL(document["jwks_uri"]).path
    key_set = KeySet.import_key_set((await client.get(jwks_path)).json())
    token = jose_jwt.decode(access, key_set, algorithms=document["id_token_signing_alg_values_supported"])
    jose_jwt.JWTClaimsRegistry(iss={"essential": True, "value": document["issuer"]}).validate(token.claims)
