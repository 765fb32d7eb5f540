"""Fixtures of the external-provider tests: the certified `oidc-provider` (npm) in a node process,
the GitHub and rogue OpenID stand-ins, and one auth app configured with all three."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.ports import free_port, wait_for_port
from devstack.processes import stop_process
from tests.auth.helpers import AuthApp
from tests.auth.providers.helpers import APP_BASE_URL, OpenIdProvider
from tests.auth.providers.standins import FakeGitHub, RogueOidc, served

OP_DIR = Path(__file__).parent / "op"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"


def _node_modules() -> Path:
    """The provider's packages: installed by `.ci/run` (npm ci), or here on first use."""
    modules = OP_DIR / "node_modules" / "oidc-provider"
    if not modules.exists():
        npm = shutil.which("npm")
        assert npm, "npm (node 20+) is needed for the external-provider tests"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(OP_DIR)], check=True, timeout=600
        )
    return modules


@pytest.fixture(scope="session")
def openid_provider(tmp_root: Path) -> Iterator[OpenIdProvider]:
    """The `oidc-provider` package on a free port, with a client for BlockBot's callback."""
    _node_modules()
    node = shutil.which("node")
    assert node, "node 20+ is needed for the external-provider tests"
    port = free_port()
    client_id = "blockbot-test"
    env = {
        **os.environ,
        "OP_PORT": str(port),
        "OP_CLIENT_ID": client_id,
        "OP_CLIENT_SECRET": CLIENT_SECRET,
        "OP_REDIRECT_URIS": f"{APP_BASE_URL}/api/v1/auth/providers/op/callback",
    }
    log = tmp_root / "oidc-provider.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [node, "server.mjs"], cwd=OP_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, timeout=60)
        yield OpenIdProvider(f"http://127.0.0.1:{port}", client_id, CLIENT_SECRET)
    finally:
        stop_process(process, grace=10)


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
