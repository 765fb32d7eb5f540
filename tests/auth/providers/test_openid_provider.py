"""Sign-up, sign-in, linking, unlinking and invitations with a real OpenID provider (npm's
certified `oidc-provider`, its development login and consent screens driven over HTTP)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.auth.helpers import PASSWORD, admin, bearer, invite, login, new_email, signup
from tests.auth.providers.helpers import (
    PREFIX,
    OpenIdProvider,
    callback,
    has_refresh_cookie,
    page,
    session_of,
    sign_in_with_op,
    start,
    through_openid_provider,
)


def _login() -> str:
    return f"acct-{uuid.uuid4().hex[:10]}"


async def _identities(browser: httpx.AsyncClient, token: httpx.Response) -> list[dict[str, Any]]:
    response = await browser.get(f"{PREFIX}/identities", headers=bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _audit(dsn: str, user_id: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    async with admin(dsn) as conn:
        rows = await conn.fetch(
            "SELECT action, details FROM audit_log WHERE actor_user_id = $1 ORDER BY id", uuid.UUID(user_id)
        )
    return [(r["action"], json.loads(r["details"])) for r in rows]


async def test_first_sign_in_with_a_new_verified_email_creates_the_account_and_org(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    account, email = _login(), new_email()
    await openid_provider.add_account(account, email, name="Grace Hopper")

    arrived = await sign_in_with_op(browser, account)

    assert page(arrived) == ("/account", {})
    assert has_refresh_cookie(arrived)
    session = await session_of(browser)
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["user"]["email"] == email
    assert body["user"]["name"] == "Grace Hopper"
    assert body["user"]["role"] == "owner"
    assert body["org"]["name"] == "Grace Hopper's organization"
    [identity] = await _identities(browser, session)
    assert (identity["provider"], identity["provider_name"], identity["email"]) == ("op", "Test OP", email)
    actions = [action for action, _ in await _audit(admin_dsn, body["user"]["id"])]
    assert {"user.registered", "identity.linked", "auth.login"} <= set(actions)


async def test_signing_in_again_opens_a_session_of_the_same_account(
    provider_auth: Any, openid_provider: OpenIdProvider
) -> None:
    account = _login()
    await openid_provider.add_account(account, new_email())
    users = []
    for _ in range(2):
        async with provider_auth.client() as browser:
            assert page(await sign_in_with_op(browser, account)) == ("/account", {})
            users.append((await session_of(browser)).json()["user"]["id"])
    assert users[0] == users[1]


async def test_a_verified_email_that_already_has_an_account_gets_no_link_and_no_session(
    browser: httpx.AsyncClient, provider_auth: Any, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    email, existing = await signup(browser, provider_auth.settings)
    browser.cookies.clear()
    account = _login()
    await openid_provider.add_account(account, email, verified=True)

    arrived = await sign_in_with_op(browser, account)

    assert page(arrived) == ("/auth/sign-in", {"error": "account_exists", "provider": "op"})
    assert not has_refresh_cookie(arrived)
    assert (await session_of(browser)).status_code == 401
    assert await _identities(browser, existing) == []
    async with admin(admin_dsn) as conn:
        refused = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE target_id = $1"
            " AND action = 'auth.provider_sign_in_refused'",
            existing.json()["user"]["id"],
        )
    assert refused == 1


async def test_an_unverified_email_equal_to_an_existing_users_never_links(
    browser: httpx.AsyncClient, provider_auth: Any, openid_provider: OpenIdProvider
) -> None:
    email, existing = await signup(browser, provider_auth.settings)
    browser.cookies.clear()
    account = _login()
    await openid_provider.add_account(account, email, verified=False)

    arrived = await sign_in_with_op(browser, account)

    assert page(arrived) == ("/auth/sign-in", {"error": "email_unverified", "provider": "op"})
    assert not has_refresh_cookie(arrived)
    assert await _identities(browser, existing) == []


async def test_an_unverified_new_email_creates_nothing(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    account, email = _login(), new_email()
    await openid_provider.add_account(account, email, verified=False)

    arrived = await sign_in_with_op(browser, account)

    assert page(arrived)[1]["error"] == "email_unverified"
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0
        assert (
            await conn.fetchval("SELECT count(*) FROM external_identities WHERE subject = $1", account) == 0
        )


async def test_denied_consent_ends_on_the_sign_in_page(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider
) -> None:
    account = _login()
    await openid_provider.add_account(account, new_email())

    arrived = await sign_in_with_op(browser, account, deny=True)

    assert page(arrived) == ("/auth/sign-in", {"error": "denied", "provider": "op"})
    assert not has_refresh_cookie(arrived)


async def _link(browser: httpx.AsyncClient, token: httpx.Response, account: str) -> httpx.Response:
    started = await browser.post(f"{PREFIX}/providers/op/link", headers=bearer(token))
    assert started.status_code == 200, started.text
    return await callback(
        browser, await through_openid_provider(started.json()["authorization_url"], account)
    )


async def test_a_signed_in_user_links_a_provider_and_then_signs_in_with_it(
    browser: httpx.AsyncClient, provider_auth: Any, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    email, signed_up = await signup(browser, provider_auth.settings)
    account = _login()
    # The provider's address need not be the account's: the signed-in user proves the link.
    await openid_provider.add_account(account, new_email(), verified=False)

    arrived = await _link(browser, signed_up, account)

    assert page(arrived) == ("/account", {"linked": "op"})
    assert [i["provider"] for i in await _identities(browser, signed_up)] == ["op"]
    actions = [a for a, _ in await _audit(admin_dsn, signed_up.json()["user"]["id"])]
    assert "identity.linked" in actions
    async with provider_auth.client() as other_browser:
        assert page(await sign_in_with_op(other_browser, account)) == ("/account", {})
        assert (await session_of(other_browser)).json()["user"]["email"] == email


async def test_an_identity_linked_to_another_user_is_not_linked_again(
    browser: httpx.AsyncClient, provider_auth: Any, openid_provider: OpenIdProvider
) -> None:
    account = _login()
    await openid_provider.add_account(account, new_email())
    async with provider_auth.client() as owner_browser:
        assert page(await sign_in_with_op(owner_browser, account)) == ("/account", {})
    _, other = await signup(browser, provider_auth.settings)

    arrived = await _link(browser, other, account)

    assert page(arrived) == ("/account", {"error": "identity_linked_elsewhere", "provider": "op"})
    assert await _identities(browser, other) == []


async def test_linking_needs_a_recent_sign_in(
    browser: httpx.AsyncClient, provider_auth: Any, admin_dsn: str
) -> None:
    _, signed_up = await signup(browser, provider_auth.settings)
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE sessions SET auth_time = now() - interval '11 minutes' WHERE user_id = $1",
            uuid.UUID(signed_up.json()["user"]["id"]),
        )

    refused = await browser.post(f"{PREFIX}/providers/op/link", headers=bearer(signed_up))

    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/reauthentication-required")


async def test_the_last_way_to_sign_in_cannot_be_unlinked(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    account = _login()
    await openid_provider.add_account(account, new_email())
    await sign_in_with_op(browser, account)
    session = await session_of(browser)
    [identity] = await _identities(browser, session)

    refused = await browser.delete(f"{PREFIX}/identities/{identity['id']}", headers=bearer(session))

    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/last-sign-in-method")
    assert len(await _identities(browser, session)) == 1


async def test_a_passkey_is_another_way_to_sign_in(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    account = _login()
    await openid_provider.add_account(account, new_email())
    await sign_in_with_op(browser, account)
    session = await session_of(browser)
    [identity] = await _identities(browser, session)
    user = session.json()["user"]
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "INSERT INTO webauthn_credentials (user_id, org_id, credential_id, public_key, name)"
            " VALUES ($1, $2, $3, $4, 'laptop')",
            uuid.UUID(user["id"]),
            uuid.UUID(session.json()["org"]["id"]),
            uuid.uuid4().bytes,
            b"key",
        )

    removed = await browser.delete(f"{PREFIX}/identities/{identity['id']}", headers=bearer(session))

    assert removed.status_code == 204
    assert await _identities(browser, session) == []


async def test_an_identity_is_unlinked_while_a_password_remains(
    browser: httpx.AsyncClient, provider_auth: Any, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    email, signed_up = await signup(browser, provider_auth.settings)
    account = _login()
    await openid_provider.add_account(account, new_email())
    await _link(browser, signed_up, account)
    [identity] = await _identities(browser, signed_up)

    removed = await browser.delete(f"{PREFIX}/identities/{identity['id']}", headers=bearer(signed_up))

    assert removed.status_code == 204
    assert await _identities(browser, signed_up) == []
    assert (await login(browser, email, PASSWORD)).status_code == 200
    assert "identity.unlinked" in [a for a, _ in await _audit(admin_dsn, signed_up.json()["user"]["id"])]
    # Someone else's identity id is a 404 (nothing about it leaks).
    assert (
        await browser.delete(f"{PREFIX}/identities/{uuid.uuid4()}", headers=bearer(signed_up))
    ).status_code == 404


async def test_an_invitation_is_accepted_with_the_invited_address(
    browser: httpx.AsyncClient, provider_auth: Any, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    _, inviter = await signup(browser, provider_auth.settings)
    browser.cookies.clear()
    invited = new_email()
    token, _ = await invite(admin_dsn, inviter, invited, role="admin")
    account = _login()
    await openid_provider.add_account(account, invited)

    started = await browser.post(f"{PREFIX}/providers/op/start", json={"invitation_token": token})
    assert started.status_code == 200, started.text
    arrived = await callback(
        browser, await through_openid_provider(started.json()["authorization_url"], account)
    )

    assert page(arrived) == ("/account", {})
    body = (await session_of(browser)).json()
    assert body["org"]["id"] == inviter.json()["org"]["id"]
    assert (body["user"]["email"], body["user"]["role"]) == (invited, "admin")


async def test_an_invitation_for_another_address_is_not_accepted(
    browser: httpx.AsyncClient, provider_auth: Any, openid_provider: OpenIdProvider, admin_dsn: str
) -> None:
    _, inviter = await signup(browser, provider_auth.settings)
    browser.cookies.clear()
    token, invitation_id = await invite(admin_dsn, inviter, new_email())
    account = _login()
    await openid_provider.add_account(account, new_email())

    started = await browser.post(f"{PREFIX}/providers/op/start", json={"invitation_token": token})
    arrived = await callback(
        browser, await through_openid_provider(started.json()["authorization_url"], account)
    )

    assert page(arrived)[1]["error"] == "invitation_email_mismatch"
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval(
            "SELECT accepted_at IS NULL FROM invitations WHERE id = $1", uuid.UUID(invitation_id)
        )


async def test_start_redirects_to_the_providers_authorization_endpoint_with_pkce_and_nonce(
    browser: httpx.AsyncClient, openid_provider: OpenIdProvider
) -> None:
    from urllib.parse import parse_qs, urlsplit

    response = await browser.get(f"{PREFIX}/providers/op/start")

    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == openid_provider.issuer + "/auth"
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://testserver/api/v1/auth/providers/op/callback"]
    assert query["nonce"] and query["state"] and query["code_challenge"]
    [cookie] = [h for h in response.headers.get_list("set-cookie") if h.startswith("bb_provider_attempt=")]
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/api/v1/auth/providers" in lowered
    assert "secure" not in lowered  # plain-HTTP APP_BASE_URL in this test: COOKIE_SECURE=false


async def test_providers_are_listed_and_an_unknown_one_is_a_404(browser: httpx.AsyncClient) -> None:
    listed = await browser.get(f"{PREFIX}/providers")
    assert listed.json()["items"] == [
        {"id": "op", "name": "Test OP"},
        {"id": "github", "name": "GitHub"},
        {"id": "rogue", "name": "rogue"},
    ]
    missing = await browser.get(f"{PREFIX}/providers/nope/start")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/unknown-provider")


async def test_start_is_unused_and_unrelated_without_sign_in(browser: httpx.AsyncClient) -> None:
    assert (await start(browser, "op")).startswith("http://127.0.0.1:")
