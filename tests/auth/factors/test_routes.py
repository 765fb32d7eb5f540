"""The second-factor routes: every answer that carries a secret (a TOTP secret, recovery codes,
an access token, a challenge's options) forbids caching, whichever route gives it."""

from __future__ import annotations

import httpx

from tests.auth.factors.authenticator import SoftAuthenticator
from tests.auth.factors.helpers import auth_header, challenge_of, code_at, enrol_passkey
from tests.auth.helpers import PREFIX, AuthApp, login, signup


async def test_every_answer_with_a_secret_forbids_caching(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, verified = await signup(client, auth.settings)
    headers = auth_header(verified.json()["access_token"])

    started = await client.post(f"{PREFIX}/factors/totp", headers=headers)
    enabled = await client.post(
        f"{PREFIX}/factors/totp/enable", json={"code": code_at(started.json()["secret"])}, headers=headers
    )
    regenerated = await client.post(f"{PREFIX}/factors/recovery-codes", headers=headers)
    registered = await enrol_passkey(client, verified.json()["access_token"], SoftAuthenticator())
    stepped_up = await client.post(
        f"{PREFIX}/reauthenticate",
        json={"recovery_code": regenerated.json()["recovery_codes"][0]},
        headers=headers,
    )
    challenge = challenge_of(await login(client, email))["challenge"]
    described = await client.post(f"{PREFIX}/second-factor/challenge", json={"challenge": challenge})

    answers = {
        "totp": started,
        "totp/enable": enabled,
        "recovery-codes": regenerated,
        "passkeys": registered,
        "reauthenticate": stepped_up,
        "second-factor/challenge": described,
    }
    for route, answer in answers.items():
        assert answer.status_code in (200, 201), (route, answer.text)
        assert answer.headers["cache-control"] == "no-store", route
    # A listing carries no secret and keeps the default caching.
    listed = await client.get(f"{PREFIX}/factors", headers=headers)
    assert listed.status_code == 200 and listed.headers.get("cache-control") != "no-store"
