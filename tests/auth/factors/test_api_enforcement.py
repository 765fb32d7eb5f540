"""Step-up and the org's second-factor policy end to end: tokens from the real auth app, checked
by the real api app (and by the auth app's own sensitive routes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from shared.settings import Settings
from tests.api.helpers import HIGH, Api, running
from tests.auth.factors.helpers import auth_header, claims_of, code_at, enrol_totp
from tests.auth.helpers import (
    KEYRING,
    PASSWORD,
    PREFIX,
    AuthApp,
    admin,
    do_refresh,
    invite,
    login,
    new_email,
    refresh_cookie,
    signup,
)
from tests.ops.helpers import public_keys_of

API = "/api/v1"


@pytest.fixture
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[Api]:
    settings = make_settings(
        "api",
        jwt_public_keys=public_keys_of(KEYRING),
        ratelimit_org_per_hour=HIGH,
        ratelimit_user_per_hour=HIGH,
        ratelimit_user_endpoint_per_minute=HIGH,
    )
    async with running(settings) as value:
        yield value


async def _aged(client: httpx.AsyncClient, admin_dsn: str, signed_in: httpx.Response) -> httpx.Response:
    """The session of `signed_in` as it is an hour after its authentication: a refresh's answer."""
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE sessions SET auth_time = now() - interval '1 hour' WHERE user_id = $1",
            signed_in.json()["user"]["id"],
        )
    refreshed = await do_refresh(client, refresh_cookie(signed_in))
    assert refreshed.status_code == 200
    return refreshed


def _needs_reauthentication(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["type"].endswith("/reauthentication-required")
    assert 'error="insufficient_user_authentication"' in response.headers["www-authenticate"]


async def _member(client: httpx.AsyncClient, admin_dsn: str, owner: httpx.Response) -> httpx.Response:
    email = new_email()
    token, _ = await invite(admin_dsn, owner, email)
    accepted = await client.post(
        f"{PREFIX}/invitations/accept", json={"token": token, "name": "Member", "password": PASSWORD}
    )
    assert accepted.status_code == 201, accepted.text
    return accepted


async def test_api_keys_and_role_changes_need_a_recent_authentication(
    auth: AuthApp, client: httpx.AsyncClient, api: Api, admin_dsn: str
) -> None:
    _, owner = await signup(client, auth.settings)
    member = await _member(client, admin_dsn, owner)
    fresh = owner.json()["access_token"]
    key = {"name": "bot", "scopes": ["read"]}
    assert (await api.client.post(f"{API}/api-keys", json=key, headers=auth_header(fresh))).status_code == 201

    stale = (await _aged(client, admin_dsn, owner)).json()["access_token"]
    _needs_reauthentication(await api.client.post(f"{API}/api-keys", json=key, headers=auth_header(stale)))
    member_id = member.json()["user"]["id"]
    role_change = {"role": "admin"}
    _needs_reauthentication(
        await api.client.patch(f"{API}/users/{member_id}", json=role_change, headers=auth_header(stale))
    )
    # A rename is not sensitive.
    owner_id = owner.json()["user"]["id"]
    rename = {"name": "Ada L."}
    renamed = await api.client.patch(f"{API}/users/{owner_id}", json=rename, headers=auth_header(stale))
    assert renamed.status_code == 200

    reauthenticate = f"{PREFIX}/reauthenticate"
    wrong = await client.post(reauthenticate, json={"password": "nope nope"}, headers=auth_header(stale))
    assert wrong.status_code == 401
    again = await client.post(reauthenticate, json={"password": PASSWORD}, headers=auth_header(stale))
    assert again.status_code == 200, again.text
    renewed = again.json()["access_token"]
    assert claims_of(renewed)["auth_time"] > claims_of(stale)["auth_time"]
    assert claims_of(renewed)["sid"] == claims_of(stale)["sid"]
    fresh_again = auth_header(renewed)
    assert (await api.client.post(f"{API}/api-keys", json=key, headers=fresh_again)).status_code == 201
    promoted = await api.client.patch(f"{API}/users/{member_id}", json=role_change, headers=fresh_again)
    assert promoted.status_code == 200


async def test_removing_a_factor_needs_a_recent_authentication(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, owner = await signup(client, auth.settings)
    secret, _ = await enrol_totp(client, owner.json()["access_token"])
    stale = (await _aged(client, admin_dsn, owner)).json()["access_token"]
    _needs_reauthentication(await client.delete(f"{PREFIX}/factors/totp", headers=auth_header(stale)))
    _needs_reauthentication(await client.post(f"{PREFIX}/factors/recovery-codes", headers=auth_header(stale)))

    again = await client.post(
        f"{PREFIX}/reauthenticate", json={"totp_code": code_at(secret, 1)}, headers=auth_header(stale)
    )
    assert again.status_code == 200, again.text
    renewed = again.json()["access_token"]
    assert claims_of(renewed)["acr"] == "aal2"
    assert (await client.delete(f"{PREFIX}/factors/totp", headers=auth_header(renewed))).status_code == 204


async def test_org_policy_refuses_tokens_below_the_level(
    auth: AuthApp, client: httpx.AsyncClient, api: Api, admin_dsn: str
) -> None:
    _, owner = await signup(client, auth.settings)
    member = await _member(client, admin_dsn, owner)
    owner_token = owner.json()["access_token"]
    policy = f"{API}/org/second-factor-policy"
    created = await api.client.post(
        f"{API}/api-keys", json={"name": "bot", "scopes": ["read"]}, headers=auth_header(owner_token)
    )
    api_key = created.json()["key"]

    # Only an owner sets it, and only from a session with a second factor.
    as_member = auth_header(member.json()["access_token"])
    assert (await api.client.put(policy, json={"required": True}, headers=as_member)).status_code == 403
    refused = await api.client.put(policy, json={"required": True}, headers=auth_header(owner_token))
    assert refused.status_code == 409
    await enrol_totp(client, owner_token)
    owner_mfa = (await do_refresh(client, refresh_cookie(owner))).json()["access_token"]
    assert claims_of(owner_mfa)["acr"] == "aal2"
    turned_on = await api.client.put(policy, json={"required": True}, headers=auth_header(owner_mfa))
    assert turned_on.status_code == 200 and turned_on.json() == {"required": True}

    # The member's single-factor token is refused at once; the owner's and the API key are not.
    below = await api.client.get(f"{API}/me", headers=auth_header(member.json()["access_token"]))
    assert below.status_code == 401
    assert below.json()["type"].endswith("/second-factor-required")
    assert (await api.client.get(f"{API}/me", headers=auth_header(owner_mfa))).status_code == 200
    assert (await api.client.get(f"{API}/me", headers=auth_header(api_key))).status_code == 200

    # Next sign-in: told to enrol; the token works at the auth service's factor routes only.
    signed_in = await login(client, member.json()["user"]["email"])
    assert signed_in.status_code == 200
    assert signed_in.json()["second_factor_enrolment_required"] is True
    token = signed_in.json()["access_token"]
    assert (await api.client.get(f"{API}/me", headers=auth_header(token))).status_code == 401
    factors = await client.get(f"{PREFIX}/factors", headers=auth_header(token))
    assert factors.json()["org_requires_second_factor"] is True
    await enrol_totp(client, token)
    upgraded = (await do_refresh(client, refresh_cookie(signed_in))).json()["access_token"]
    assert (await api.client.get(f"{API}/me", headers=auth_header(upgraded))).status_code == 200

    async with admin(admin_dsn) as conn:
        actions = await conn.fetch(
            "SELECT action, details FROM audit_log WHERE org_id = $1"
            " AND action = 'org.second_factor_policy_changed'",
            owner.json()["org"]["id"],
        )
    assert len(actions) == 1
