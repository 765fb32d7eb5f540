"""OIDC discovery through Traefik: PyJWT's JWKS client, given only the issuer's discovery URL."""

from __future__ import annotations

import httpx
import jwt
import pytest

from devstack.run import LocalStack
from tests.e2e.helpers import Account

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_pyjwt_discovers_the_keys_and_verifies_a_token(
    stack: LocalStack,
    client: httpx.Client,
    alice: Account,
) -> None:
    response = client.get("/api/v1/auth/.well-known/openid-configuration")
    assert response.status_code == 200, response.text
    document = response.json()
    # The announced jwks_uri is a public URL of the gateway (APP_BASE_URL), fetched as is.
    jwks_client = jwt.PyJWKClient(document["jwks_uri"], cache_keys=False)
    signing_key = jwks_client.get_signing_key_from_jwt(alice.access)
    claims = jwt.decode(
        alice.access,
        signing_key.key,
        algorithms=document["id_token_signing_alg_values_supported"],
        issuer=document["issuer"],
        audience="blockbot-api",
    )
    assert claims["sub"] == alice.user_id and claims["org"] == alice.org_id
