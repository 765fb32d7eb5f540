"""The GitHub preset against a local stand-in of GitHub's OAuth and API endpoints: only the
primary, verified address counts."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.auth.helpers import admin, new_email, signup
from tests.auth.providers.helpers import has_refresh_cookie, page, session_of, sign_in_with_standin
from tests.auth.providers.standins import FakeGitHub


def _account(emails: list[dict[str, Any]]) -> dict[str, Any]:
    user_id = random.randrange(10**8, 10**9)
    return {"id": user_id, "login": f"octo{user_id}", "name": None, "emails": emails}


async def test_a_primary_verified_address_signs_up_and_then_in(
    provider_auth: Any, github: FakeGitHub, admin_dsn: str
) -> None:
    email = new_email()
    github.account = _account(
        [
            {"email": new_email(), "primary": False, "verified": True},
            {"email": email, "primary": True, "verified": True},
        ]
    )
    users = []
    for _ in range(2):
        async with provider_auth.client() as browser:
            assert page(await sign_in_with_standin(browser, "github")) == ("/account", {})
            body = (await session_of(browser)).json()
            users.append(body["user"]["id"])
    assert users[0] == users[1]
    assert body["user"]["email"] == email
    # GitHub's login names the person when they have no display name.
    assert body["user"]["name"] == github.account["login"]
    async with admin(admin_dsn) as conn:
        subject = await conn.fetchval(
            "SELECT subject FROM external_identities WHERE provider = 'github' AND email = $1", email
        )
    assert subject == str(github.account["id"])


@pytest.mark.parametrize(
    "emails",
    [
        pytest.param([{"primary": True, "verified": False}], id="primary-unverified"),
        pytest.param(
            [{"primary": True, "verified": False}, {"primary": False, "verified": True}],
            id="only-a-secondary-verified",
        ),
        pytest.param([], id="no-address"),
    ],
)
async def test_without_a_primary_verified_address_nothing_is_created(
    browser: httpx.AsyncClient, github: FakeGitHub, admin_dsn: str, emails: list[dict[str, Any]]
) -> None:
    addresses = [{**e, "email": new_email()} for e in emails]
    github.account = _account(addresses)

    arrived = await sign_in_with_standin(browser, "github")

    assert page(arrived) == ("/auth/sign-in", {"error": "email_unverified", "provider": "github"})
    assert not has_refresh_cookie(arrived)
    async with admin(admin_dsn) as conn:
        for address in addresses:
            assert await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", address["email"]) == 0


async def test_a_verified_github_address_of_an_existing_account_gets_no_session(
    browser: httpx.AsyncClient, provider_auth: Any, github: FakeGitHub
) -> None:
    email, _ = await signup(browser, provider_auth.settings)
    browser.cookies.clear()
    github.account = _account([{"email": email, "primary": True, "verified": True}])

    arrived = await sign_in_with_standin(browser, "github")

    assert page(arrived) == ("/auth/sign-in", {"error": "account_exists", "provider": "github"})
    assert (await session_of(browser)).status_code == 401
