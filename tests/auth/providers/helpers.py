"""A browser for the external-provider tests: it starts at BlockBot, goes through the provider's
screens (the real `oidc-provider`'s login and consent forms, or a stand-in's instant redirect),
and comes back to BlockBot's callback with the cookies a browser would carry."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from devstack.ports import free_port, wait_for_port
from devstack.processes import stop_process

# The web app's origin in these tests: the ASGI client's base URL, so the callback that the
# provider redirects to is a request this client can make.
APP_BASE_URL = "http://testserver"
PREFIX = "/api/v1/auth"
OP_DIR = Path(__file__).parent / "op"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"


@dataclass(frozen=True)
class OpenIdProvider:
    issuer: str
    client_id: str
    client_secret: str

    async def add_account(
        self, account_id: str, email: str, *, verified: bool = True, name: str = "Grace Hopper"
    ) -> None:
        """Arrange the claims the provider gives for a login as `account_id`."""
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{self.issuer}/__test/accounts",
                json={"id": account_id, "email": email, "email_verified": verified, "name": name},
            )
            assert response.status_code == 204, response.text


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


@contextmanager
def run_openid_provider(log: Path, *redirect_uris: str) -> Iterator[OpenIdProvider]:
    """The `oidc-provider` package in a node process on a free loopback port, with one
    confidential client (`blockbot-test`) whose redirect URIs are `redirect_uris` exactly."""
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
        "OP_REDIRECT_URIS": ",".join(redirect_uris),
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [node, "server.mjs"], cwd=OP_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, timeout=60)
        yield OpenIdProvider(f"http://127.0.0.1:{port}", client_id, CLIENT_SECRET)
    finally:
        stop_process(process, grace=10)


def page(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """Where a BlockBot redirect sends the browser: the page's path and its fragment's fields."""
    assert response.status_code == 302, (response.status_code, response.text)
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == APP_BASE_URL, response.headers["location"]
    return location.path, dict(parse_qsl(location.fragment))


def _form(html: str) -> tuple[str, str]:
    """The action and the `prompt` of the provider's interaction form."""
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    prompt = re.search(r'name="prompt" value="([^"]+)"', html)
    assert action and prompt, html[:500]
    return action.group(1), prompt.group(1)


async def through_openid_provider(authorization_url: str, login: str, *, deny: bool = False) -> str:
    """Drive `oidc-provider`'s development screens (log in as `login`, then consent, or abort
    with `deny`) and return the URL it redirects the browser to (BlockBot's callback)."""
    async with httpx.AsyncClient() as provider:
        url = authorization_url
        for _ in range(20):
            response = await provider.get(url)
            if response.status_code in (302, 303):
                target = urljoin(url, response.headers["location"])
                if target.startswith(APP_BASE_URL):
                    return target
                url = target
                continue
            assert response.status_code == 200, (response.status_code, response.text[:500])
            action, prompt = _form(response.text)
            action = urljoin(url, action)
            if deny:
                url = action.rstrip("/") + "/abort"
                continue
            form = {"prompt": prompt}
            if prompt == "login":
                form |= {"login": login, "password": "any password"}
            posted = await provider.post(action, data=form)
            assert posted.status_code in (302, 303), (posted.status_code, posted.text[:500])
            url = urljoin(action, posted.headers["location"])
            if url.startswith(APP_BASE_URL):
                return url
    raise AssertionError("the provider never redirected back")


async def through_standin(authorization_url: str) -> str:
    """A stand-in redirects at once: the callback URL it sends the browser to."""
    async with httpx.AsyncClient() as provider:
        response = await provider.get(authorization_url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(APP_BASE_URL), location
    return location


async def start(browser: httpx.AsyncClient, provider: str) -> str:
    """Press "Continue with …": BlockBot's 302 to the provider's authorization endpoint."""
    response = await browser.get(f"{PREFIX}/providers/{provider}/start")
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def callback(browser: httpx.AsyncClient, url: str) -> httpx.Response:
    """The browser arrives back at BlockBot's callback (with its own cookies)."""
    parts = urlsplit(url)
    return await browser.get(f"{parts.path}?{parts.query}")


async def sign_in_with_op(browser: httpx.AsyncClient, login: str, *, deny: bool = False) -> httpx.Response:
    """The whole sign-in through the real provider: BlockBot's answer to the callback."""
    authorization_url = await start(browser, "op")
    return await callback(browser, await through_openid_provider(authorization_url, login, deny=deny))


async def sign_in_with_standin(browser: httpx.AsyncClient, provider: str) -> httpx.Response:
    authorization_url = await start(browser, provider)
    return await callback(browser, await through_standin(authorization_url))


async def session_of(browser: httpx.AsyncClient) -> httpx.Response:
    """What the account page does on arrival: a refresh with the cookie the callback set."""
    return await browser.post(f"{PREFIX}/refresh")


def has_refresh_cookie(response: httpx.Response) -> bool:
    return any(
        h.startswith("bb_refresh=") and 'bb_refresh=""' not in h
        for h in response.headers.get_list("set-cookie")
    )
