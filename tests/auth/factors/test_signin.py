"""The sign-in seam: for an account with a second factor, no first factor alone yields tokens."""

from __future__ import annotations

import httpx

from tests.auth.factors.helpers import (
    audit_actions,
    challenge_of,
    claims_of,
    code_at,
    enrol_totp,
    second_factor,
)
from tests.auth.helpers import (
    PREFIX,
    AuthApp,
    comparable,
    do_refresh,
    last_token,
    login,
    new_email,
    refresh_cookie,
    signup,
)


async def test_password_alone_gets_a_challenge_not_tokens(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, verified = await signup(client, auth.settings)
    secret, _ = await enrol_totp(client, verified.json()["access_token"])

    answer = await login(client, email)
    body = challenge_of(answer)
    assert body["methods"] == ["totp", "recovery_code"]
    assert body["expires_in"] == auth.settings.second_factor_challenge_ttl_seconds
    assert body["webauthn"] is None
    assert answer.headers["cache-control"] == "no-store"

    # A wrong password and an unknown address still look alike; neither yields a challenge.
    wrong = await login(client, email, "not the password")
    unknown = await login(client, new_email())
    assert wrong.status_code == 401 and comparable(wrong) == comparable(unknown)
    assert "challenge" not in wrong.json()

    done = await second_factor(client, body["challenge"], totp_code=code_at(secret, 1))
    assert done.status_code == 200, done.text
    assert refresh_cookie(done)
    actions = await audit_actions(admin_dsn, verified.json()["user"]["id"])
    assert "auth.second_factor_challenged" in actions
    assert actions[-1] == "auth.login"


async def test_magic_link_alone_gets_a_challenge_and_the_link_is_spent(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, verified = await signup(client, auth.settings)
    secret, _ = await enrol_totp(client, verified.json()["access_token"])
    assert (await client.post(f"{PREFIX}/magic-link", json={"email": email})).status_code == 202
    token = await last_token(auth.settings, email, "magic_link")

    body = challenge_of(await client.post(f"{PREFIX}/magic-link/verify", json={"token": token}))
    again = await client.post(f"{PREFIX}/magic-link/verify", json={"token": token})
    assert again.status_code == 400  # the link was consumed by the first answer

    done = await second_factor(client, body["challenge"], totp_code=code_at(secret, 1))
    assert done.status_code == 200, done.text
    claims = claims_of(done.json()["access_token"])
    assert claims["amr"] == ["email", "otp", "mfa"]
    assert claims["acr"] == "aal2"


async def test_refresh_alone_gets_no_access_and_keeps_the_sessions_level(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, verified = await signup(client, auth.settings)
    # Another device signed in with the password before the factor existed.
    other_device = refresh_cookie(await login(client, email))
    secret, _ = await enrol_totp(client, verified.json()["access_token"])
    # Enrolling revoked that single-factor session: its refresh token opens nothing now.
    stale = await do_refresh(client, other_device)
    assert stale.status_code == 401

    # The session that enrolled proved the factor: its refreshes are aal2 now.
    upgraded = await do_refresh(client, refresh_cookie(verified))
    assert upgraded.status_code == 200
    assert claims_of(upgraded.json()["access_token"])["acr"] == "aal2"

    done = await second_factor(
        client, challenge_of(await login(client, email))["challenge"], totp_code=code_at(secret, 1)
    )
    first = claims_of(done.json()["access_token"])
    refreshed = await do_refresh(client, refresh_cookie(done))
    assert refreshed.status_code == 200
    claims = claims_of(refreshed.json()["access_token"])
    assert (claims["amr"], claims["acr"], claims["auth_time"]) == (
        first["amr"],
        first["acr"],
        first["auth_time"],
    )


async def test_single_factor_tokens_say_so(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, verified = await signup(client, auth.settings)
    claims = claims_of(verified.json()["access_token"])
    assert claims["amr"] == ["pwd", "email"] and claims["acr"] == "aal1"
    assert abs(claims["auth_time"] - claims["iat"]) <= 5
    logged_in = claims_of((await login(client, email)).json()["access_token"])
    assert logged_in["amr"] == ["pwd"] and logged_in["acr"] == "aal1"


async def test_unknown_or_garbled_challenge(auth: AuthApp, client: httpx.AsyncClient) -> None:
    for challenge in ("not-a-token", "A" * 43):
        answer = await second_factor(client, challenge, totp_code="123456")
        assert answer.status_code == 401
        assert answer.json()["type"].endswith("/invalid-second-factor-challenge")
    both = await client.post(
        f"{PREFIX}/second-factor",
        json={"challenge": "x", "totp_code": "123456", "recovery_code": "abcde-fghij"},
    )
    assert both.status_code == 422
