"""Each guard of the external sign-in, tested with the forgery it exists for: the callback's
`state` (missing, from another browser, replayed), the code (replayed into another attempt), the
id_token (another issuer, another audience, no nonce or another one, a wrong at_hash, expired),
RFC 9207's `iss`, the discovery document's issuer, and providers that are down."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from devstack.ports import free_port
from tests.auth.helpers import AuthApp, admin, bearer, new_email, signup
from tests.auth.providers.helpers import (
    APP_BASE_URL,
    OpenIdProvider,
    callback,
    has_refresh_cookie,
    page,
    session_of,
    sign_in_with_standin,
    start,
    through_openid_provider,
    through_standin,
)
from tests.auth.providers.standins import RogueOidc


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


async def _op_callback_url(browser: httpx.AsyncClient, openid_provider: OpenIdProvider) -> str:
    account = f"acct-{uuid.uuid4().hex[:10]}"
    await openid_provider.add_account(account, new_email())
    return await through_openid_provider(await start(browser, "op"), account)


def _refused(response: httpx.Response, reason: str) -> None:
    assert page(response) == (
        "/auth/sign-in",
        {"error": reason, "provider": response.url.path.split("/")[-2]},
    )
    assert not has_refresh_cookie(response)


# --- state -------------------------------------------------------------------------------------


async def test_a_callback_without_state_is_refused(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider
) -> None:
    url = await _op_callback_url(browser, openid_provider)

    _refused(await callback(browser, _with_query(url, state=None)), "state_missing")
    assert (await session_of(browser)).status_code == 401


async def test_a_callback_carried_to_another_browser_is_refused(
    provider_auth: AuthApp, openid_provider: OpenIdProvider
) -> None:
    """Login CSRF: the attacker's own callback URL, opened in the victim's browser (which has an
    attempt cookie of its own, or none), must not sign the victim in to the attacker's account."""
    async with provider_auth.client() as attacker, provider_auth.client() as victim:
        url = await _op_callback_url(attacker, openid_provider)
        await start(victim, "op")  # the victim's own, unrelated attempt cookie

        _refused(await callback(victim, url), "state_mismatch")
        assert (await session_of(victim)).status_code == 401


async def test_a_callback_with_another_state_is_refused(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider
) -> None:
    url = await _op_callback_url(browser, openid_provider)

    _refused(await callback(browser, _with_query(url, state="x" * 43)), "expired")


async def test_a_replayed_callback_signs_in_once(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider
) -> None:
    url = await _op_callback_url(browser, openid_provider)
    assert page(await callback(browser, url)) == ("/account", {})

    _refused(await callback(browser, url), "expired")


async def test_a_code_replayed_into_another_attempt_is_refused(
    provider_auth: AuthApp, openid_provider: OpenIdProvider
) -> None:
    """An attacker who got the victim's code injects it into an attempt of their own: the code
    was bound (PKCE) to the victim's verifier, which the attacker's attempt does not hold."""
    async with provider_auth.client() as victim, provider_auth.client() as attacker:
        victims = await _op_callback_url(victim, openid_provider)
        own = urlsplit(await start(attacker, "op"))
        attacker_state = dict(parse_qsl(own.query))["state"]
        forged = _with_query(victims, state=attacker_state)

        _refused(await callback(attacker, forged), "provider_error")
        assert (await session_of(attacker)).status_code == 401


async def test_an_expired_attempt_is_refused(
    browser: httpx.AsyncClient, provider_auth: AuthApp, openid_provider: OpenIdProvider
) -> None:
    url = await _op_callback_url(browser, openid_provider)
    state = dict(parse_qsl(urlsplit(url).query))["state"]
    # The attempt's key expires in Redis: what AUTH_PROVIDER_ATTEMPT_TTL_SECONDS does.
    from services.auth.providers.service import _attempt_key

    await provider_auth.state.redis.delete(_attempt_key(provider_auth.state, state))

    _refused(await callback(browser, url), "expired")


# --- RFC 9207 iss ------------------------------------------------------------------------------


async def test_an_authorization_response_from_another_issuer_is_refused(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider
) -> None:
    """Mix-up: the response names another issuer than the provider this attempt went to."""
    url = await _op_callback_url(browser, openid_provider)

    _refused(await callback(browser, _with_query(url, iss="https://evil.example")), "issuer_mismatch")


async def test_a_missing_iss_is_refused_when_the_provider_advertises_it(
    browser: httpx.AsyncClient, rogue: RogueOidc
) -> None:
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}
    rogue.send_iss = False

    _refused(await sign_in_with_standin(browser, "rogue"), "issuer_mismatch")


# --- the id_token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"iss": "https://accounts.evil.example"}, id="another-issuer"),
        pytest.param({"aud": "another-client"}, id="another-audience"),
        # Authorized party ours, audience not: passes an azp check alone.
        pytest.param({"aud": "another-client", "azp": "rogue-client"}, id="another-audience-our-azp"),
        pytest.param({"nonce": None}, id="nonce-missing"),
        pytest.param({"nonce": "not-the-nonce-of-this-attempt"}, id="nonce-wrong"),
        pytest.param({"exp": int(time.time()) - 3600}, id="expired"),
        pytest.param({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, id="at-hash-wrong"),
    ],
)
async def test_a_forged_id_token_is_refused(
    browser: httpx.AsyncClient, rogue: RogueOidc, admin_dsn: str, tamper: dict[str, Any]
) -> None:
    subject = uuid.uuid4().hex
    rogue.account = {"sub": subject, "email": new_email(), "email_verified": True}
    rogue.tamper = tamper

    _refused(await sign_in_with_standin(browser, "rogue"), "invalid_id_token")
    async with admin(admin_dsn) as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM external_identities WHERE subject = $1", subject) == 0
        )


async def test_an_honest_id_token_signs_in(browser: httpx.AsyncClient, rogue: RogueOidc) -> None:
    """The control of the forgeries above: the same provider, nothing tampered with."""
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}

    assert page(await sign_in_with_standin(browser, "rogue")) == ("/account", {})


async def test_a_discovery_document_naming_another_issuer_is_refused(
    browser: httpx.AsyncClient, rogue: RogueOidc, provider_auth: AuthApp
) -> None:
    rogue.discovery_issuer = "https://evil.example"
    provider = provider_auth.app.state.providers.get("rogue")
    provider._client.server_metadata.clear()  # as after a restart: discovery is fetched again
    try:
        response = await browser.get("/api/v1/auth/providers/rogue/start")
        assert page(response) == ("/auth/sign-in", {"error": "invalid_response", "provider": "rogue"})
    finally:
        rogue.discovery_issuer = None
        provider._client.server_metadata.clear()


# --- the provider's own MFA (trust_mfa) ------------------------------------------------------


@pytest.mark.parametrize(
    ("amr", "counted"),
    [
        (["pwd", "mfa"], True),
        (["pwd", "otp"], True),  # two kinds: known and had
        (["pwd"], False),
        (["otp"], False),  # one factor (a passwordless code), however strong
        (["hwk"], False),
        (["hwk", "swk"], False),  # two of one kind
    ],
)
async def test_the_providers_mfa_is_recorded_where_the_operator_trusts_it(
    browser: httpx.AsyncClient, rogue: RogueOidc, admin_dsn: str, amr: list[str], counted: bool
) -> None:
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True, "amr": amr}
    await sign_in_with_standin(browser, "rogue")
    user_id = (await session_of(browser)).json()["user"]["id"]

    async with admin(admin_dsn) as conn:
        details = await conn.fetchval(
            "SELECT details FROM audit_log WHERE actor_user_id = $1 AND action = 'auth.login'",
            uuid.UUID(user_id),
        )
    assert json.loads(details) == {
        "method": "external_provider",
        "provider": "rogue",
        "provider_mfa": counted,
    }


# --- providers that are down ------------------------------------------------------------------


async def test_a_provider_that_fails_at_the_token_endpoint_ends_on_the_sign_in_page(
    browser: httpx.AsyncClient, rogue: RogueOidc
) -> None:
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}
    authorization_url = await start(browser, "rogue")
    rogue.token_down = True

    _refused(await callback(browser, await through_standin(authorization_url)), "provider_unavailable")


async def test_a_provider_that_cannot_be_reached_ends_on_the_sign_in_page(
    start_auth: Callable[..., Any],
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    providers = [{"id": "down", "issuer": closed, "client_id": "c", "client_secret": "s"}]
    async with (
        start_auth(app_base_url=APP_BASE_URL, auth_providers=providers) as auth,
        auth.client() as browser,
    ):
        response = await browser.get("/api/v1/auth/providers/down/start")
        assert page(response) == ("/auth/sign-in", {"error": "provider_unavailable", "provider": "down"})
        invitation = await browser.post(
            "/api/v1/auth/providers/down/start", json={"invitation_token": "x" * 43}
        )
        assert invitation.status_code == 400  # the invitation is checked first, then the provider


# --- accounts an operator disabled, and the metrics -------------------------------------------


async def test_a_disabled_account_is_not_signed_in_by_its_identity(
    provider_auth: AuthApp, rogue: RogueOidc, admin_dsn: str
) -> None:
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}
    async with provider_auth.client() as browser:
        await sign_in_with_standin(browser, "rogue")
        user_id = (await session_of(browser)).json()["user"]["id"]
    async with admin(admin_dsn) as conn:
        await conn.execute("UPDATE users SET disabled_at = now() WHERE id = $1", uuid.UUID(user_id))

    async with provider_auth.client() as browser:
        _refused(await sign_in_with_standin(browser, "rogue"), "sign_in_refused")


async def test_sign_ins_and_failures_are_counted_per_provider(
    browser: httpx.AsyncClient, rogue: RogueOidc
) -> None:
    from prometheus_client import REGISTRY

    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    signed_up = count("auth_provider_sign_ins_total", provider="rogue", outcome="signed_up")
    forged = count("auth_provider_failures_total", provider="rogue", reason="invalid_id_token")
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}
    await sign_in_with_standin(browser, "rogue")
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}
    rogue.tamper = {"aud": "another-client"}
    await sign_in_with_standin(browser, "rogue")

    assert count("auth_provider_sign_ins_total", provider="rogue", outcome="signed_up") == signed_up + 1
    assert count("auth_provider_failures_total", provider="rogue", reason="invalid_id_token") == forged + 1


# --- linking ---------------------------------------------------------------------------------


async def _link_rogue(browser: httpx.AsyncClient, token: httpx.Response, rogue: RogueOidc) -> httpx.Response:
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}
    started = await browser.post("/api/v1/auth/providers/rogue/link", headers=bearer(token))
    assert started.status_code == 200, started.text
    return await callback(browser, await through_standin(started.json()["authorization_url"]))


async def test_a_second_identity_of_one_provider_is_not_linked(
    browser: httpx.AsyncClient, provider_auth: AuthApp, rogue: RogueOidc
) -> None:
    _, signed_up = await signup(browser, provider_auth.settings)
    assert page(await _link_rogue(browser, signed_up, rogue)) == ("/account", {"linked": "rogue"})

    second = await _link_rogue(browser, signed_up, rogue)

    assert page(second) == ("/account", {"error": "provider_already_linked", "provider": "rogue"})


async def test_a_link_finished_after_its_session_ended_is_refused(
    browser: httpx.AsyncClient, provider_auth: AuthApp, rogue: RogueOidc
) -> None:
    _, signed_up = await signup(browser, provider_auth.settings)
    rogue.account = {"sub": uuid.uuid4().hex, "email": new_email(), "email_verified": True}
    started = await browser.post("/api/v1/auth/providers/rogue/link", headers=bearer(signed_up))
    assert (await browser.post("/api/v1/auth/logout-all", headers=bearer(signed_up))).status_code == 204

    arrived = await callback(browser, await through_standin(started.json()["authorization_url"]))

    assert page(arrived) == ("/account", {"error": "session_ended", "provider": "rogue"})


async def test_linking_needs_a_signed_in_caller(browser: httpx.AsyncClient) -> None:
    assert (await browser.post("/api/v1/auth/providers/rogue/link")).status_code == 401


# --- what a provider says about the person ------------------------------------------------------


async def test_an_overlong_address_from_a_known_identity_is_ignored(
    browser: httpx.AsyncClient, rogue: RogueOidc, admin_dsn: str
) -> None:
    subject = uuid.uuid4().hex
    rogue.account = {"sub": subject, "email": new_email(), "email_verified": True}
    assert page(await sign_in_with_standin(browser, "rogue"))[0] == "/account"

    # The provider now sends an address no column can hold: the sign-in still works, without it.
    rogue.account = {"sub": subject, "email": "a" * 320 + "@example.com", "email_verified": True}
    assert page(await sign_in_with_standin(browser, "rogue"))[0] == "/account"
    async with admin(admin_dsn) as conn:
        stored = await conn.fetchval("SELECT email FROM external_identities WHERE subject = $1", subject)
    assert stored is None
