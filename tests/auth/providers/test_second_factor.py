"""An external provider is a first factor like the others: for an account with a second factor
its callback sets no cookie and sends the browser to the challenge page, which finishes it."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from tests.auth.factors.helpers import claims_of, code_at, enrol_totp, second_factor
from tests.auth.helpers import PREFIX, new_email
from tests.auth.providers.helpers import has_refresh_cookie, page, session_of, sign_in_with_standin
from tests.auth.providers.standins import FakeGitHub, RogueOidc


async def test_a_provider_sign_in_of_an_account_with_totp_ends_on_the_challenge(
    provider_auth: Any, github: FakeGitHub
) -> None:
    user_id = random.randrange(10**8, 10**9)
    github.account = {
        "id": user_id,
        "login": f"octo{user_id}",
        "name": None,
        "emails": [{"email": new_email(), "primary": True, "verified": True}],
    }
    async with provider_auth.client() as browser:
        assert page(await sign_in_with_standin(browser, "github")) == ("/account", {})
        token = (await session_of(browser)).json()["access_token"]
        secret, _ = await enrol_totp(browser, token)

    async with provider_auth.client() as browser:
        answer = await sign_in_with_standin(browser, "github")
        path, fragment = page(answer)
        assert path == "/auth/second-factor" and fragment["provider"] == "github"
        assert not has_refresh_cookie(answer)
        assert (await session_of(browser)).status_code == 401

        described = await browser.post(
            f"{PREFIX}/second-factor/challenge", json={"challenge": fragment["challenge"]}
        )
        assert described.status_code == 200
        assert described.json()["methods"] == ["totp", "recovery_code"]
        assert (
            0 < described.json()["expires_in"] <= provider_auth.settings.second_factor_challenge_ttl_seconds
        )

        done = await second_factor(browser, fragment["challenge"], totp_code=code_at(secret, 1))
        assert done.status_code == 200, done.text
        claims = claims_of(done.json()["access_token"])
        assert claims["acr"] == "aal2" and claims["amr"][-2:] == ["otp", "mfa"]


@pytest.mark.parametrize(("amr", "trusted"), [(["pwd", "mfa"], True), (["pwd"], False)])
async def test_a_trusted_providers_mfa_stands_for_the_second_factor(
    provider_auth: Any, rogue: RogueOidc, amr: list[str], trusted: bool
) -> None:
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True, "amr": amr}
    async with provider_auth.client() as browser:
        assert page(await sign_in_with_standin(browser, "rogue"))[0] == "/account"
        first = (await session_of(browser)).json()["access_token"]
        assert claims_of(first)["acr"] == ("aal2" if trusted else "aal1")
        await enrol_totp(browser, first)

    async with provider_auth.client() as browser:
        path, _ = page(await sign_in_with_standin(browser, "rogue"))
        if trusted:
            assert path == "/account"
            claims = claims_of((await session_of(browser)).json()["access_token"])
            assert (claims["amr"], claims["acr"]) == (["external_provider", "mfa"], "aal2")
        else:
            assert path == "/auth/second-factor"
