"""Talking to providers, through Authlib: authorization URLs, code exchange, id_token and profile.

Every provider is an Authlib OAuth 2 client with PKCE (S256). OpenID Connect providers (generic by
issuer URL, and the Google, Microsoft and GitLab presets) are found by discovery; their id_token
is verified by Authlib against the provider's JWKS with `iss` pinned to the discovered issuer,
`aud` to our client id, `exp`, `nonce` and `at_hash` (when present). GitHub speaks OAuth 2 only:
the person is read from its user and emails endpoints, and only the primary, verified address
counts. Nothing here decides what a sign-in means: that is `service.py`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from joserfc.errors import JoseError

from shared.settings import ProviderPreset, ProviderSettings, Settings

logger = logging.getLogger("blockbot.auth.providers")

# The kind of factor each RFC 8176 `amr` value proves: something known, had or been. One value
# alone (an `otp` of a passwordless sign-in, a passkey's `hwk`) is one factor, not two.
_FACTOR_KINDS = {
    **dict.fromkeys(("pwd", "pin", "kba"), "knowledge"),
    **dict.fromkeys(("otp", "hwk", "swk", "sms", "tel", "sc"), "possession"),
    **dict.fromkeys(("fpt", "face", "iris", "retina", "vbm"), "inherence"),
}


def multi_factor(amr: tuple[str, ...]) -> bool:
    """Whether `amr` says the provider checked two factors: `mfa`, or two distinct kinds."""
    return "mfa" in amr or len({_FACTOR_KINDS[m] for m in amr if m in _FACTOR_KINDS}) >= 2


_DISPLAY_NAMES = {
    ProviderPreset.GOOGLE: "Google",
    ProviderPreset.MICROSOFT: "Microsoft",
    ProviderPreset.GITLAB: "GitLab",
    ProviderPreset.GITHUB: "GitHub",
}
_OIDC_SCOPES = ["openid", "email", "profile"]
_GITHUB_SCOPES = ["read:user", "user:email"]
# Microsoft's multi-tenant endpoints publish this placeholder in their issuer; the token's `tid`
# fills it (Microsoft's documented validation for common/organizations/consumers).
_TENANT_PLACEHOLDER = "{tenantid}"
_MS_ALIASES = frozenset({"common", "organizations", "consumers"})


class ProviderFailure(Exception):
    """The provider refused, answered something unusable, or could not be reached.

    `reason` is a metric label and the error code the person's page shows."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Profile:
    """Who the provider says signed in."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    amr: tuple[str, ...] = ()

    @property
    def verified_email(self) -> str | None:
        """The address, normalized, only when the provider vouches for it."""
        if not self.email_verified or not self.email:
            return None
        return self.email.strip().lower()


# An address longer than this fits no column (RFC 5321's bound; the schema's CHECK).
MAX_EMAIL_LENGTH = 320


def _address(value: object) -> str | None:
    """The provider's address when it can be one of ours; else none (as if it sent none)."""
    if not isinstance(value, str) or not 3 <= len(value.strip()) <= MAX_EMAIL_LENGTH:
        return None
    return value


@dataclass(frozen=True)
class Authorization:
    """What the callback must present again: the URL to send the browser to, and its secrets."""

    url: str
    code_verifier: str
    nonce: str | None


def _issuer(config: ProviderSettings) -> str:
    if config.preset is ProviderPreset.GOOGLE:
        return "https://accounts.google.com"
    if config.preset is ProviderPreset.MICROSOFT:
        return f"https://login.microsoftonline.com/{config.tenant or 'common'}/v2.0"
    if config.preset is ProviderPreset.GITLAB and config.issuer is None:
        return "https://gitlab.com"
    assert config.issuer is not None
    return str(config.issuer).rstrip("/")


def _github_urls(config: ProviderSettings) -> tuple[str, str]:
    """The web base (authorize, token) and the API base of GitHub or a GitHub Enterprise Server."""
    web = str(config.url or "https://github.com").rstrip("/")
    if config.api_url is not None:
        return web, str(config.api_url).rstrip("/")
    if web == "https://github.com":
        return web, "https://api.github.com"
    return web, web + "/api/v3"


class Provider:
    """One configured provider: its Authlib client and how its answers become a `Profile`."""

    def __init__(self, config: ProviderSettings, settings: Settings) -> None:
        self.config = config
        self.key = config.key
        self.name = config.name or _DISPLAY_NAMES.get(config.preset, config.key)
        self.trust_mfa = config.trust_mfa
        self.is_oidc = config.preset is not ProviderPreset.GITHUB
        self.issuer = _issuer(config) if self.is_oidc else None
        scopes = config.scopes or (_OIDC_SCOPES if self.is_oidc else _GITHUB_SCOPES)
        if self.is_oidc and "openid" not in scopes:
            scopes = ["openid", *scopes]
        client_kwargs: dict[str, Any] = {
            "scope": " ".join(scopes),
            "code_challenge_method": "S256",
            "timeout": settings.auth_provider_http_timeout_seconds,
        }
        registry = OAuth()
        options: dict[str, Any] = {
            "client_id": config.client_id,
            "client_secret": config.client_secret.get_secret_value(),
            "client_kwargs": client_kwargs,
        }
        if self.is_oidc:
            assert self.issuer is not None
            # Discovery always starts from the configured issuer (the Microsoft aliases too).
            options["server_metadata_url"] = self.issuer + "/.well-known/openid-configuration"
        else:
            web, api = _github_urls(config)
            self.api_base = api
            client_kwargs["token_endpoint_auth_method"] = "client_secret_post"
            options.update(
                authorize_url=web + "/login/oauth/authorize",
                access_token_url=web + "/login/oauth/access_token",
                api_base_url=api + "/",
            )
        client = registry.register(self.key, **options)
        assert isinstance(client, StarletteOAuth2App)
        self._client = client

    # --- the start --------------------------------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (fetched once, then kept); {} for GitHub. Its issuer must be
        the configured one (OpenID Connect Discovery 4.3)."""
        if not self.is_oidc:
            return {}
        metadata: dict[str, Any] = await self._client.load_server_metadata()
        issuer = metadata.get("issuer")
        if not isinstance(issuer, str) or not self._acceptable_issuer(issuer):
            # Not kept: the next attempt fetches it again.
            self._client.server_metadata.clear()
            raise ProviderFailure("invalid_response", "the discovery document names another issuer")
        self.issuer = issuer
        return metadata

    def _acceptable_issuer(self, issuer: str) -> bool:
        """The configured issuer; for Microsoft's multi-tenant aliases (common, organizations,
        consumers), the issuer its discovery document publishes for them."""
        if issuer == self.issuer:
            return True
        tenant = self.config.tenant or "common"
        alias = self.config.preset is ProviderPreset.MICROSOFT and tenant in _MS_ALIASES
        return alias and re.fullmatch(r"https://login\.microsoftonline\.com/[^/]+/v2\.0", issuer) is not None

    async def authorization(self, redirect_uri: str, state: str) -> Authorization:
        """The URL of the provider's authorization endpoint for one attempt (PKCE S256, nonce)."""
        await self.metadata()
        result = await self._client.create_authorization_url(redirect_uri, state=state)
        return Authorization(
            url=str(result["url"]),
            code_verifier=str(result["code_verifier"]),
            nonce=str(result["nonce"]) if result.get("nonce") else None,
        )

    # --- the callback ----------------------------------------------------------------------

    async def check_issuer_parameter(self, iss: str | None) -> None:
        """RFC 9207: an `iss` in the authorization response must be the provider's issuer, and it
        must be there when the provider says it sends one (a mix-up attack otherwise)."""
        if not self.is_oidc:
            if iss is not None:
                raise ProviderFailure("issuer_mismatch", "an iss parameter from a provider without one")
            return
        metadata = await self.metadata()
        if iss is None:
            if metadata.get("authorization_response_iss_parameter_supported") is True:
                raise ProviderFailure("issuer_mismatch", "the authorization response has no iss")
            return
        if iss != self.issuer:
            raise ProviderFailure("issuer_mismatch", "the authorization response names another issuer")

    async def profile(
        self, *, code: str, code_verifier: str, redirect_uri: str, nonce: str | None
    ) -> Profile:
        """Exchange the code (with the PKCE verifier) and read who signed in."""
        token = await self._client.fetch_access_token(
            code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
        if self.is_oidc:
            return await self._oidc_profile(token, nonce)
        return await self._github_profile(token)

    def _claims_options(self) -> dict[str, Any]:
        assert self.issuer is not None
        issuer = self.issuer
        options: dict[str, Any] = {
            "iss": {"essential": True, "values": [issuer]},
            "aud": {"essential": True, "values": [self.config.client_id]},
        }
        if _TENANT_PLACEHOLDER in issuer:

            def tenant_issuer(claims: dict[str, Any], value: Any) -> bool:
                tenant = claims.get("tid")
                return isinstance(tenant, str) and value == issuer.replace(_TENANT_PLACEHOLDER, tenant)

            options["iss"] = {"essential": True, "validate": tenant_issuer}
        return options

    async def _oidc_profile(self, token: dict[str, Any], nonce: str | None) -> Profile:
        if "id_token" not in token or not nonce:
            raise ProviderFailure("invalid_response", "the token response has no id_token")
        try:
            claims = await self._client.parse_id_token(
                token, nonce=nonce, claims_options=self._claims_options(), leeway=60
            )
        except (JoseError, ValueError) as error:
            raise ProviderFailure("invalid_id_token", f"id_token refused: {type(error).__name__}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise ProviderFailure("invalid_id_token", "id_token without a subject")
        merged: dict[str, Any] = dict(claims)
        if "email" not in merged and (await self.metadata()).get("userinfo_endpoint"):
            info = await self._client.userinfo(token=token)
            # OpenID Connect Core 5.3.2: userinfo about anyone else is not this person's.
            if info.get("sub") != subject:
                raise ProviderFailure("invalid_response", "userinfo is about another subject")
            merged = {**dict(info), **merged}
        amr = merged.get("amr")
        return Profile(
            subject=subject,
            email=_address(merged.get("email")),
            email_verified=self._email_verified(merged),
            name=merged.get("name") if isinstance(merged.get("name"), str) else None,
            amr=tuple(str(v) for v in amr) if isinstance(amr, list) else (),
        )

    def _email_verified(self, claims: dict[str, Any]) -> bool:
        """Only an explicit `email_verified: true` vouches for the address. Microsoft sends none
        (its `email` is whatever the tenant typed): there the optional claim `xms_edov` (the
        domain's owner verified it) counts, as Microsoft documents."""
        if claims.get("email_verified") is True:
            return True
        return self.config.preset is ProviderPreset.MICROSOFT and claims.get("xms_edov") is True

    async def _github_profile(self, token: dict[str, Any]) -> Profile:
        user = await self._client.get("user", token=token)
        emails = await self._client.get("user/emails", token=token)
        for response in (user, emails):
            if response.status_code != 200:
                raise ProviderFailure("invalid_response", f"github answered {response.status_code}")
        data, listed = user.json(), emails.json()
        if not isinstance(data, dict) or not isinstance(data.get("id"), int) or not isinstance(listed, list):
            raise ProviderFailure("invalid_response", "github's user or emails are malformed")
        primary = next(
            (
                e
                for e in listed
                if isinstance(e, dict) and e.get("primary") is True and isinstance(e.get("email"), str)
            ),
            None,
        )
        name = data.get("name") or data.get("login")
        return Profile(
            subject=str(data["id"]),
            email=_address(primary["email"]) if primary else None,
            email_verified=bool(primary and primary.get("verified") is True),
            name=name if isinstance(name, str) else None,
        )


def failure_of(error: Exception) -> ProviderFailure | None:
    """What a provider call's exception means; None when it is not the provider's doing."""
    if isinstance(error, ProviderFailure):
        return error
    if isinstance(error, OAuthError):
        return ProviderFailure("provider_error", f"provider error: {error.error}")
    if isinstance(error, httpx.HTTPStatusError):
        return ProviderFailure("provider_unavailable", f"provider answered {error.response.status_code}")
    if isinstance(error, httpx.HTTPError):
        return ProviderFailure("provider_unavailable", f"provider unreachable: {type(error).__name__}")
    if isinstance(error, JoseError):
        return ProviderFailure("invalid_id_token", f"id_token refused: {type(error).__name__}")
    if isinstance(error, (ValueError, KeyError, TypeError)):
        # Malformed JSON or documents (Authlib raises these on unusable answers).
        return ProviderFailure("invalid_response", f"unusable answer: {type(error).__name__}")
    return None


class Providers:
    """The configured providers by id (AUTH_PROVIDERS), built once per process."""

    def __init__(self, settings: Settings) -> None:
        self._by_key = {config.key: Provider(config, settings) for config in settings.auth_providers}

    def get(self, key: str) -> Provider | None:
        return self._by_key.get(key)

    def all(self) -> list[Provider]:
        return list(self._by_key.values())
