"""Passkeys through the real py_webauthn verification, with a software authenticator:
registration (`none` and `packed` attestation), second factor, passwordless sign-in, removal,
a cloned authenticator and an assertion for another RP ID."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.auth.factors.authenticator import SoftAuthenticator
from tests.auth.factors.helpers import (
    audit_actions,
    auth_header,
    challenge_of,
    claims_of,
    enrol_passkey,
    second_factor,
)
from tests.auth.helpers import PREFIX, AuthApp, admin, login, refresh_cookie, signup


async def _passwordless(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator, **kwargs: object
) -> httpx.Response:
    options = await client.post(f"{PREFIX}/passkeys/options")
    assert options.status_code == 200
    assert options.json()["userVerification"] == "required"
    assert "allowCredentials" not in options.json() or options.json()["allowCredentials"] == []
    credential = authenticator.get(options.json(), **kwargs)  # type: ignore[arg-type]
    return await client.post(f"{PREFIX}/passkeys/authenticate", json={"credential": credential})


@pytest.mark.parametrize("fmt", ["none", "packed"])
async def test_register_and_sign_in_passwordless(auth: AuthApp, client: httpx.AsyncClient, fmt: str) -> None:
    email, verified = await signup(client, auth.settings)
    key = SoftAuthenticator()
    created = await enrol_passkey(client, verified.json()["access_token"], key, fmt=fmt, name="Laptop")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["passkey"]["name"] == "Laptop" and body["passkey"]["synced"] is False
    assert len(body["recovery_codes"]) == 10

    signed_in = await _passwordless(client, key)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["email"] == email
    assert refresh_cookie(signed_in)
    claims = claims_of(signed_in.json()["access_token"])
    assert claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == "aal2"


async def test_passwordless_needs_user_verification_and_a_fresh_challenge(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, verified = await signup(client, auth.settings)
    key = SoftAuthenticator(synced=True)
    assert (await enrol_passkey(client, verified.json()["access_token"], key)).status_code == 201

    unverified = await _passwordless(client, key, verify_user=False)
    assert unverified.status_code == 401

    options = (await client.post(f"{PREFIX}/passkeys/options")).json()
    credential = key.get(options)
    first = await client.post(f"{PREFIX}/passkeys/authenticate", json={"credential": credential})
    assert first.status_code == 200
    assert claims_of(first.json()["access_token"])["amr"][0] == "swk"
    replayed = await client.post(f"{PREFIX}/passkeys/authenticate", json={"credential": credential})
    assert replayed.status_code == 401  # the challenge is single use


async def test_passkey_as_second_factor_after_the_password(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, verified = await signup(client, auth.settings)
    key = SoftAuthenticator(user_verifying=False)
    assert (
        await enrol_passkey(client, verified.json()["access_token"], key, fmt="packed")
    ).status_code == 201

    body = challenge_of(await login(client, email))
    assert body["methods"] == ["webauthn", "recovery_code"]
    options = body["webauthn"]
    assert [c["id"] for c in options["allowCredentials"]] == [_b64(key.credential_id)]
    done = await second_factor(client, body["challenge"], webauthn=key.get(options))
    assert done.status_code == 200, done.text
    assert claims_of(done.json()["access_token"])["amr"] == ["pwd", "hwk", "mfa"]


def _b64(data: bytes) -> str:
    from shared.access_tokens import b64url_encode

    return b64url_encode(data)


async def test_cloned_authenticator_is_refused_and_audited(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, verified = await signup(client, auth.settings)
    key = SoftAuthenticator()
    assert (await enrol_passkey(client, verified.json()["access_token"], key)).status_code == 201
    clone = key.clone()
    assert (await _passwordless(client, key)).status_code == 200  # count 1
    assert (await _passwordless(client, key)).status_code == 200  # count 2
    behind = await _passwordless(client, clone)  # the clone says 1 again
    assert behind.status_code == 401
    user_id = verified.json()["user"]["id"]
    assert "second_factor.passkey_sign_count_regressed" in await audit_actions(admin_dsn, user_id)
    async with admin(admin_dsn) as conn:
        count = await conn.fetchval("SELECT sign_count FROM webauthn_credentials WHERE user_id = $1", user_id)
    assert count == 2
    assert (await _passwordless(client, key)).status_code == 200  # the genuine key still works


async def test_assertion_for_another_rp_or_origin_is_refused(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, verified = await signup(client, auth.settings)
    key = SoftAuthenticator()
    assert (await enrol_passkey(client, verified.json()["access_token"], key)).status_code == 201
    assert (await _passwordless(client, key, rp_id="evil.example")).status_code == 401
    assert (await _passwordless(client, key, origin="https://evil.example")).status_code == 401
    assert (await _passwordless(client, key)).status_code == 200


async def test_registration_for_another_rp_is_refused(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    options = (await client.post(f"{PREFIX}/factors/passkeys/options", headers=auth_header(token))).json()
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    credential = SoftAuthenticator().create(options, rp_id="evil.example")
    refused = await client.post(
        f"{PREFIX}/factors/passkeys",
        json={"name": "Evil", "credential": credential},
        headers=auth_header(token),
    )
    assert refused.status_code == 400


async def test_several_named_passkeys_removable(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    phone, laptop = SoftAuthenticator(synced=True), SoftAuthenticator()
    first = await enrol_passkey(client, token, phone, name="Phone")
    second = await enrol_passkey(client, token, laptop, name="Laptop")
    assert first.status_code == second.status_code == 201
    assert second.json()["recovery_codes"] is None  # the first registration made them
    again = await enrol_passkey(client, token, laptop, name="Laptop again")
    assert again.status_code == 409

    listed = (await client.get(f"{PREFIX}/factors", headers=auth_header(token))).json()
    assert [(p["name"], p["synced"]) for p in listed["passkeys"]] == [("Phone", True), ("Laptop", False)]
    removed = await client.delete(
        f"{PREFIX}/factors/passkeys/{first.json()['passkey']['id']}", headers=auth_header(token)
    )
    assert removed.status_code == 204
    assert (await _passwordless(client, phone)).status_code == 401
    assert (await _passwordless(client, laptop)).status_code == 200

    # The last one gone: no factor, no recovery codes, and the password alone signs in again.
    assert (
        await client.delete(
            f"{PREFIX}/factors/passkeys/{second.json()['passkey']['id']}", headers=auth_header(token)
        )
    ).status_code == 204
    listed = (await client.get(f"{PREFIX}/factors", headers=auth_header(token))).json()
    assert listed["passkeys"] == [] and listed["recovery_codes_remaining"] == 0
    assert (await login(client, email)).status_code == 200


async def test_another_users_passkey_is_not_removable(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, alice = await signup(client, auth.settings)
    _, bob = await signup(client, auth.settings)
    created = await enrol_passkey(client, alice.json()["access_token"], SoftAuthenticator())
    refused = await client.delete(
        f"{PREFIX}/factors/passkeys/{created.json()['passkey']['id']}",
        headers=auth_header(bob.json()["access_token"]),
    )
    assert refused.status_code == 404


async def test_reauthenticate_with_a_passkey(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, alice = await signup(client, auth.settings)
    _, bob = await signup(client, auth.settings)
    key, bobs_key = SoftAuthenticator(), SoftAuthenticator()
    token = alice.json()["access_token"]
    assert (await enrol_passkey(client, token, key)).status_code == 201
    assert (await enrol_passkey(client, bob.json()["access_token"], bobs_key)).status_code == 201

    async def reauthenticate(authenticator: SoftAuthenticator) -> httpx.Response:
        options = await client.post(f"{PREFIX}/reauthenticate/options", headers=auth_header(token))
        return await client.post(
            f"{PREFIX}/reauthenticate",
            json={"webauthn": authenticator.get(options.json())},
            headers=auth_header(token),
        )

    assert (await reauthenticate(bobs_key)).status_code == 401  # someone else's passkey
    again = await reauthenticate(key)
    assert again.status_code == 200, again.text
    assert claims_of(again.json()["access_token"])["sid"] == claims_of(token)["sid"]


async def test_the_authenticated_options_routes_are_rate_limited(
    auth: AuthApp, client: httpx.AsyncClient, start_auth: Callable[..., Any]
) -> None:
    _, verified = await signup(client, auth.settings)
    headers = auth_header(verified.json()["access_token"])
    network = f"2001:db8:{secrets.randbelow(65536):x}:{secrets.randbelow(65536):x}::1"  # its own /64
    async with start_auth(ratelimit_auth_ip_per_minute=3) as limited, limited.client(network) as other:
        for path in ("/reauthenticate/options", "/factors/passkeys/options"):
            answers = [(await other.post(f"{PREFIX}{path}", headers=headers)).status_code for _ in range(4)]
            assert answers == [200, 200, 200, 429], path
