"""Fixtures of the external-provider tests: the certified `oidc-provider` (npm) in a node process,
the GitHub and rogue OpenID stand-ins, and one auth app configured with all three."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.helpers import AuthApp
from tests.auth.providers.helpers import APP_BASE_URL, CLIENT_SECRET, OpenIdProvider, run_openid_provider
from tests.auth.providers.standins import FakeGitHub, RogueOidc, served


@pytest.fixture(scope="session")
def openid_provider(tmp_root: Path) -> Iterator[OpenIdProvider]:
    """The `oidc-provider` package on a free port, with a client for BlockBot's callback."""
    redirect_uri = f"{APP_BASE_URL}/api/v1/auth/providers/op/callback"
    with run_openid_provider(tmp_root / "oidc-provider.log", redirect_uri) as running:
        yield running


@pytest.fixture(scope="session")
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub("gh-client", CLIENT_SECRET)
    with served(fake.app()) as url:
        fake.base_url = url
        yield fake


@pytest.fixture(scope="session")
def rogue() -> Iterator[RogueOidc]:
    fake = RogueOidc("rogue-client", CLIENT_SECRET)
    with served(fake.app()) as url:
        fake.base_url = url
        yield fake


def provider_settings(
    openid_provider: OpenIdProvider, github: FakeGitHub, rogue: RogueOidc
) -> list[dict[str, Any]]:
    return [
        {
            "id": "op",
            "name": "Test OP",
            "issuer": openid_provider.issuer,
            "client_id": openid_provider.client_id,
            "client_secret": openid_provider.client_secret,
        },
        {
            "preset": "github",
            "url": github.base_url,
            "client_id": github.client_id,
            "client_secret": CLIENT_SECRET,
        },
        {
            "id": "rogue",
            "issuer": rogue.base_url,
            "client_id": rogue.client_id,
            "client_secret": CLIENT_SECRET,
            "trust_mfa": True,
        },
    ]


@pytest.fixture(scope="session")
async def provider_auth(
    start_auth: Callable[..., Any], openid_provider: OpenIdProvider, github: FakeGitHub, rogue: RogueOidc
) -> AsyncIterator[AuthApp]:
    """An auth app with the three providers, its web app at APP_BASE_URL."""
    providers = provider_settings(openid_provider, github, rogue)
    async with start_auth(app_base_url=APP_BASE_URL, auth_providers=providers) as running:
        yield running


@pytest.fixture
async def browser(provider_auth: AuthApp) -> AsyncIterator[httpx.AsyncClient]:
    """One browser's view of BlockBot (its own cookie jar)."""
    async with provider_auth.client() as client:
        yield client


@pytest.fixture(autouse=True)
def _honest_rogue(rogue: RogueOidc) -> Iterator[None]:
    rogue.reset()
    yield
    rogue.reset()
