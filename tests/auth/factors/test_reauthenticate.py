"""Reauthentication (step-up) proves a factor the account has: with a second factor enrolled a
password alone is refused (before it is checked), a TOTP code, a passkey or a recovery code
passes; without one, the password does."""

from __future__ import annotations

import httpx

from tests.auth.factors.helpers import auth_header, claims_of, code_at, enrol_totp
from tests.auth.helpers import PASSWORD, PREFIX, AuthApp, signup


async def test_password_alone_does_not_step_up_an_account_with_a_second_factor(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    url = f"{PREFIX}/reauthenticate"
    assert (
        await client.post(url, json={"password": PASSWORD}, headers=auth_header(token))
    ).status_code == 200

    secret, codes = await enrol_totp(client, token)
    for password in (PASSWORD, "not the password"):
        refused = await client.post(url, json={"password": password}, headers=auth_header(token))
        assert refused.status_code == 401, refused.text
        assert refused.json()["type"].endswith("/reauthentication-needs-second-factor")

    by_code = await client.post(url, json={"totp_code": code_at(secret, 1)}, headers=auth_header(token))
    assert by_code.status_code == 200, by_code.text
    by_recovery = await client.post(url, json={"recovery_code": codes[0]}, headers=auth_header(token))
    assert by_recovery.status_code == 200, by_recovery.text
    assert claims_of(by_recovery.json()["access_token"])["sid"] == claims_of(token)["sid"]
    spent = await client.post(url, json={"recovery_code": codes[0]}, headers=auth_header(token))
    assert spent.status_code == 401
