"""HTTP of discovery: the JWKS and the OpenID configuration (no rules: both are read-only views)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.auth.prefix import AUTH_PREFIX
from services.auth.schemas import JWKS, OpenIDConfiguration
from services.auth.state import AuthDep
from shared.access_tokens import ALGORITHM, REQUIRED_CLAIMS

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.get("/.well-known/jwks.json", response_model=JWKS)
async def jwks(state: AuthDep, response: Response) -> dict[str, list[dict[str, str]]]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return state.keyring.jwks()


@router.get("/.well-known/openid-configuration", response_model=OpenIDConfiguration)
async def openid_configuration(state: AuthDep, response: Response) -> OpenIDConfiguration:
    """Discovery: JOSE/OIDC libraries given the issuer find the keys and algorithms here.

    URLs come from APP_BASE_URL (the one public origin), never from the request's Host header,
    so a forged Host cannot make a cached copy point clients at someone else's keys.
    """
    response.headers["Cache-Control"] = "public, max-age=300"
    origin = str(state.settings.app_base_url).rstrip("/")
    return OpenIDConfiguration(
        issuer=state.settings.jwt_issuer,
        jwks_uri=f"{origin}{AUTH_PREFIX}/.well-known/jwks.json",
        # No ID tokens are issued; OIDC requires the field and libraries read the JWKS
        # algorithm from it, so it names the one algorithm every token here is signed with.
        id_token_signing_alg_values_supported=[ALGORITHM],
        # No OAuth token endpoint: clients do not authenticate to one.
        token_endpoint_auth_methods_supported=["none"],
        subject_types_supported=["public"],
        response_types_supported=[],
        claims_supported=list(REQUIRED_CLAIMS),
    )
