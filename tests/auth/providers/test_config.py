"""AUTH_PROVIDERS: checked at start, one clear message per bad value (never a secret), and the
presets' endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.auth.providers.protocol import Provider, Providers
from shared.settings import SettingsError, load_settings

SECRET = "s3cr3t-value-never-printed"


def _load(providers: Any, **overrides: Any) -> Any:
    value = providers if isinstance(providers, str) else json.dumps(providers)
    return load_settings(_env_file=None, auth_providers=value, **overrides)


def _problems(providers: Any, **overrides: Any) -> str:
    with pytest.raises(SettingsError) as raised:
        _load(providers, **overrides)
    text = str(raised.value)
    assert SECRET not in text
    return text


def test_presets_need_only_their_client() -> None:
    settings = _load(
        [
            {"preset": "google", "client_id": "g", "client_secret": SECRET},
            {
                "preset": "microsoft",
                "tenant": "contoso.onmicrosoft.com",
                "client_id": "m",
                "client_secret": SECRET,
            },
            {"preset": "gitlab", "client_id": "l", "client_secret": SECRET},
            {"preset": "github", "client_id": "h", "client_secret": SECRET},
            {"id": "corp", "issuer": "https://id.example.com/", "client_id": "c", "client_secret": SECRET},
        ]
    )
    providers = Providers(settings).all()
    assert [(p.key, p.name, p.issuer) for p in providers] == [
        ("google", "Google", "https://accounts.google.com"),
        ("microsoft", "Microsoft", "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"),
        ("gitlab", "GitLab", "https://gitlab.com"),
        ("github", "GitHub", None),
        ("corp", "corp", "https://id.example.com"),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "corp", "client_id": "c", "client_secret": SECRET}, "provider 1 (corp): issuer is required"),
        ({"issuer": "https://id.example.com", "client_id": "c", "client_secret": SECRET}, "id is required"),
        ({"preset": "google", "client_secret": SECRET}, "provider 1 (google): client_id: Field required"),
        ({"preset": "google", "client_id": "g", "client_secret": SECRET, "clientsecret": 1}, "clientsecret"),
        ({"preset": "facebook", "client_id": "g", "client_secret": SECRET}, "preset: Input should be"),
        ({"preset": "github", "client_id": "g", "client_secret": SECRET, "trust_mfa": True}, "amr"),
        ({"preset": "google", "client_id": "g", "client_secret": ""}, "client_secret must not be empty"),
        (
            {"id": "Bad Id", "preset": "google", "client_id": "g", "client_secret": SECRET},
            "id: String should",
        ),
        (
            {"preset": "google", "issuer": "https://x.example", "client_id": "g", "client_secret": SECRET},
            "fixed",
        ),
    ],
)
def test_each_bad_entry_is_named(entry: dict[str, Any], message: str) -> None:
    text = _problems([entry])
    assert "AUTH_PROVIDERS" in text
    assert message in text


def test_two_providers_with_one_id_are_refused() -> None:
    entry = {"preset": "google", "client_id": "g", "client_secret": SECRET}
    assert "provider id 'google' is used twice" in _problems([entry, entry])


def test_not_json_is_refused() -> None:
    assert "AUTH_PROVIDERS: must be a JSON list" in _problems("google")


def test_production_needs_https_providers() -> None:
    entry = {"id": "corp", "issuer": "http://id.example.com", "client_id": "c", "client_secret": SECRET}
    text = _problems(
        [entry],
        env="production",
        cookie_secure=True,
        app_base_url="https://app.example.com",
        email_from="BlockBot <no-reply@blockbot.dev>",
    )
    assert "provider 'corp' needs an https issuer/url in production" in text


def test_a_placeholder_client_secret_is_refused_in_production() -> None:
    entry = {"preset": "google", "client_id": "g", "client_secret": "change-me-please"}
    with pytest.raises(SettingsError) as raised:
        _load(
            [entry],
            env="production",
            cookie_secure=True,
            app_base_url="https://app.example.com",
            email_from="BlockBot <no-reply@blockbot.dev>",
        )
    assert "AUTH_PROVIDERS still holds a placeholder" in str(raised.value)


def test_github_enterprise_and_microsoft_multi_tenant_endpoints() -> None:
    settings = _load(
        [
            {"preset": "github", "url": "https://git.example.com", "client_id": "h", "client_secret": SECRET},
            {"preset": "microsoft", "client_id": "m", "client_secret": SECRET},
        ]
    )
    github, microsoft = Providers(settings).all()
    assert github.api_base == "https://git.example.com/api/v3"
    assert microsoft.issuer == "https://login.microsoftonline.com/common/v2.0"
    # Multi-tenant discovery publishes a per-tenant issuer template; one tenant's issuer is fine,
    # another host is not.
    assert microsoft._acceptable_issuer("https://login.microsoftonline.com/{tenantid}/v2.0")
    assert not microsoft._acceptable_issuer("https://login.evil.example/{tenantid}/v2.0")


def test_microsoft_counts_an_address_only_when_its_domain_owner_verified_it() -> None:
    settings = _load([{"preset": "microsoft", "client_id": "m", "client_secret": SECRET}])
    provider: Provider = Providers(settings).all()[0]
    assert not provider._email_verified({"email": "a@contoso.com"})
    assert provider._email_verified({"email": "a@contoso.com", "xms_edov": True})
