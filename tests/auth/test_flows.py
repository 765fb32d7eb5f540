"""Happy paths through HTTP: sign-up, verification, login, sessions, logout, magic link, reset."""

from __future__ import annotations

from typing import Any

import httpx

from shared.access_tokens import is_session_revoked
from tests.auth.helpers import (
    PREFIX,
    AuthApp,
    admin,
    bearer,
    comparable,
    do_refresh,
    invite,
    last_token,
    login,
    new_email,
    queued_emails,
    refresh_cookie,
    register,
    signup,
    verify_email,
)


async def test_register_verify_login_and_sessions(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email = new_email()
    response = await register(client, email)
    assert response.status_code == 202
    assert response.json() == {"status": "verification_sent"}
    for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert name in response.headers

    emails = await queued_emails(auth.settings, email)
    assert [e["template"] for e in emails] == ["verify_email"]
    link = emails[0]["context"]["link"]
    assert link.startswith("http://localhost:8080/auth/verify-email#token=")
    assert emails[0]["context"]["name"] == "Ada"

    # Unverified: cannot log in, and the answer is the one for a wrong password.
    unverified = await login(client, email)
    wrong = await login(client, email, "not the password")
    assert unverified.status_code == 401
    assert comparable(unverified) == comparable(wrong)

    token = link.split("#token=")[1]
    verified = await verify_email(client, token)
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["user"]["email"] == email
    assert body["user"]["role"] == "owner"
    assert body["user"]["email_verified"] is True
    assert body["org"]["name"] == "Acme"
    assert body["org"]["id"] == body["user"]["org_id"]
    cookie = next(h for h in verified.headers.get_list("set-cookie") if h.startswith("bb_refresh="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/api/v1/auth" in cookie
    assert "Max-Age=604800" in cookie
    assert "Secure" not in cookie  # cookie_secure=False in tests

    # The verification token is single use.
    again = await verify_email(client, token)
    assert again.status_code == 400

    logged_in = await login(client, email)
    assert logged_in.status_code == 200
    assert logged_in.json()["user"]["id"] == body["user"]["id"]

    listed = await client.get(f"{PREFIX}/sessions", headers=bearer(logged_in))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2
    assert sum(item["current"] for item in items) == 1
    assert {item["ip"] for item in items} == {"198.51.100.7"}

    # Revoke the other session (the one from verification) by id.
    other = next(item for item in items if not item["current"])
    deleted = await client.delete(f"{PREFIX}/sessions/{other['id']}", headers=bearer(logged_in))
    assert deleted.status_code == 204
    assert await is_session_revoked(auth.state.redis, auth.settings, other["id"])
    revoked_access = await client.get(f"{PREFIX}/sessions", headers=bearer(verified))
    assert revoked_access.status_code == 401
    listed = await client.get(f"{PREFIX}/sessions", headers=bearer(logged_in))
    assert [item["id"] for item in listed.json()["items"]] != [other["id"]]
    assert len(listed.json()["items"]) == 1


async def test_another_users_session_is_404(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, first = await signup(client, auth.settings)
    _, second = await signup(client, auth.settings)
    theirs = (await client.get(f"{PREFIX}/sessions", headers=bearer(second))).json()["items"][0]
    response = await client.delete(f"{PREFIX}/sessions/{theirs['id']}", headers=bearer(first))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    unknown = await client.delete(
        f"{PREFIX}/sessions/00000000-0000-4000-8000-000000000000", headers=bearer(first)
    )
    assert unknown.status_code == 404
    assert (await client.get(f"{PREFIX}/sessions", headers=bearer(second))).status_code == 200


async def test_sessions_require_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/sessions")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_logout_and_logout_all(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, verified = await signup(client, auth.settings)
    second = await login(client, email)
    third = await login(client, email)

    client.cookies.clear()
    out = await client.post(f"{PREFIX}/logout", headers={"Cookie": f"bb_refresh={refresh_cookie(second)}"})
    assert out.status_code == 204
    cleared = out.headers["set-cookie"]
    assert cleared.startswith('bb_refresh=""') or "Max-Age=0" in cleared
    assert (await do_refresh(client, refresh_cookie(second))).status_code == 401
    assert (await client.get(f"{PREFIX}/sessions", headers=bearer(second))).status_code == 401
    # Logout without a cookie is still a 204.
    client.cookies.clear()
    assert (await client.post(f"{PREFIX}/logout")).status_code == 204

    everything = await client.post(f"{PREFIX}/logout-all", headers=bearer(third))
    assert everything.status_code == 204
    for response in (verified, third):
        assert (await do_refresh(client, refresh_cookie(response))).status_code == 401
        assert (await client.get(f"{PREFIX}/sessions", headers=bearer(response))).status_code == 401
    assert (await client.post(f"{PREFIX}/logout-all")).status_code == 401


async def test_magic_link_logs_in(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, _ = await signup(client, auth.settings)
    response = await client.post(f"{PREFIX}/magic-link", json={"email": email})
    assert response.status_code == 202
    emails = await queued_emails(auth.settings, email)
    magic = [e for e in emails if e["template"] == "magic_link"][-1]
    assert magic["context"]["link"].startswith("http://localhost:8080/auth/magic#token=")
    assert magic["context"]["expires_in_seconds"] == 900
    token = magic["context"]["link"].split("#token=")[1]

    # A GET never consumes the token (there is no GET route at all).
    probe = await client.get(f"{PREFIX}/magic-link/verify", params={"token": token})
    assert probe.status_code == 405
    verified = await client.post(f"{PREFIX}/magic-link/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["email_verified"] is True
    assert (await login(client, email)).status_code == 200
    await client.post(f"{PREFIX}/magic-link", json={"email": email})
    again = [e for e in await queued_emails(auth.settings, email) if e["template"] == "magic_link"]
    second = again[-1]["context"]["link"].split("#token=")[1]
    relogin = await client.post(f"{PREFIX}/magic-link/verify", json={"token": second})
    assert relogin.status_code == 200
    assert relogin.json()["user"]["id"] == verified.json()["user"]["id"]


async def test_verify_request_sends_a_new_link(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    first = await last_token(auth.settings, email, "verify_email")
    response = await client.post(f"{PREFIX}/email/verify-request", json={"email": email})
    assert response.status_code == 202
    second = await last_token(auth.settings, email, "verify_email")
    assert second != first
    # The new link activates the same attempt (same password); the first one then dies with it.
    assert (await verify_email(client, second)).status_code == 200
    assert (await verify_email(client, first)).status_code == 400
    # Verified accounts get nothing more.
    count = len(await queued_emails(auth.settings, email))
    again = await client.post(f"{PREFIX}/email/verify-request", json={"email": email})
    assert again.status_code == 202
    assert len(await queued_emails(auth.settings, email)) == count


async def test_register_taken_address_sends_account_exists(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, _ = await signup(client, auth.settings)
    response = await register(client, email, "someone else 123")
    assert response.status_code == 202
    assert response.json() == {"status": "verification_sent"}
    last = (await queued_emails(auth.settings, email))[-1]
    assert last["template"] == "account_exists"
    assert set(last["context"]) == {"login_link", "reset_link"}
    assert (await login(client, email, "someone else 123")).status_code == 401
    assert (await login(client, email)).status_code == 200


async def test_password_reset_revokes_sessions(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, first = await signup(client, auth.settings)
    second = await login(client, email)
    forgot = await client.post(f"{PREFIX}/password/forgot", json={"email": email})
    assert forgot.status_code == 202
    token = await last_token(auth.settings, email, "password_reset")
    short = await client.post(f"{PREFIX}/password/reset", json={"token": token, "password": "short"})
    assert short.status_code == 422
    new_password = "a brand new password"
    reset = await client.post(f"{PREFIX}/password/reset", json={"token": token, "password": new_password})
    assert reset.status_code == 204
    for response in (first, second):
        assert (await do_refresh(client, refresh_cookie(response))).status_code == 401
        assert (await client.get(f"{PREFIX}/sessions", headers=bearer(response))).status_code == 401
    assert (await login(client, email)).status_code == 401
    assert (await login(client, email, new_password)).status_code == 200
    reused = await client.post(
        f"{PREFIX}/password/reset", json={"token": token, "password": "yet another password"}
    )
    assert reused.status_code == 400


async def test_invitation_accept(auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str) -> None:
    _, owner = await signup(client, auth.settings)
    org_id = owner.json()["org"]["id"]
    invitee = new_email()
    token, invitation_id = await invite(admin_dsn, owner, invitee, "admin")
    body = {"token": token, "name": "Grace", "password": "invited password"}
    accepted = await client.post(f"{PREFIX}/invitations/accept", json=body)
    assert accepted.status_code == 201, accepted.text
    user = accepted.json()["user"]
    assert user["org_id"] == org_id
    assert user["role"] == "admin"
    assert user["email"] == invitee
    assert user["email_verified"] is True
    assert refresh_cookie(accepted)
    assert (await client.post(f"{PREFIX}/invitations/accept", json=body)).status_code == 400
    assert (await login(client, invitee, "invited password")).status_code == 200
    async with admin(admin_dsn) as conn:
        accepted_at = await conn.fetchval("SELECT accepted_at FROM invitations WHERE id = $1", invitation_id)
        actions = {
            r["action"] for r in await conn.fetch("SELECT action FROM audit_log WHERE org_id = $1", org_id)
        }
    assert accepted_at is not None
    assert {"invitation.accepted", "user.email_verified", "session.created"} <= actions


async def test_jwks_and_refresh_body(auth: AuthApp, client: httpx.AsyncClient) -> None:
    jwks = await client.get(f"{PREFIX}/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys: list[dict[str, Any]] = jwks.json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and "d" not in k for k in keys)
    _, verified = await signup(client, auth.settings)
    refreshed = await do_refresh(client, refresh_cookie(verified))
    assert refreshed.status_code == 200
    assert refreshed.json()["user"]["id"] == verified.json()["user"]["id"]
    assert refreshed.json()["access_token"] != verified.json()["access_token"]
