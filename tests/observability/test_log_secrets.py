"""Passwords, tokens, cookies and Authorization headers never reach the logs.

Real flows run through the real auth and api apps and the real worker (sign-up, verification,
bad and good logins, refresh with the cookie, bearer calls, magic link, password reset,
logout), with every logger at DEBUG. Everything the processes log (our JSON handler on the
root logger, plus anything written to stdout/stderr) is searched for every secret they handled.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import httpx
import pytest

from tests.observability.helpers import (
    AUTH,
    PASSWORD,
    LogCapture,
    bearer,
    new_email,
    queued_token,
    refresh_cookie,
    run_worker_burst,
)


def is_test_client_line(line: str) -> bool:
    """The test's own HTTP client logs the URLs it requests; that is not a service's log."""
    return '"logger":"httpx"' in line and "http://testserver/" in line


async def test_no_secret_reaches_the_logs(start_services: Any, capfd: pytest.CaptureFixture[str]) -> None:
    email = new_email()
    wrong_password = "Wrong-" + secrets.token_hex(8)
    new_password = "Reset-" + secrets.token_hex(8)
    forged_bearer = "forged." + secrets.token_urlsafe(24)
    basic = "Basic " + secrets.token_urlsafe(18)
    stray_cookie = "stray-" + secrets.token_urlsafe(18)
    query_secret = "q-" + secrets.token_urlsafe(18)
    secrets_seen: dict[str, str] = {
        "password": PASSWORD,
        "wrong password": wrong_password,
        "new password": new_password,
        "forged bearer": forged_bearer,
        "basic credentials": basic.split()[1],
        "stray cookie": stray_cookie,
        "query secret": query_secret,
    }

    capture = LogCapture()
    root = logging.getLogger()
    async with start_services() as svc:
        capture.install()
        level = root.level
        root.setLevel(logging.DEBUG)
        try:
            async with svc.client(svc.auth) as auth, svc.client(svc.api) as api:
                await run_flows(svc, auth, api, email, secrets_seen)
        finally:
            root.setLevel(level)
            capture.remove()

    out, err = capfd.readouterr()
    logged = "\n".join(
        line for line in (capture.text + out + err).splitlines() if not is_test_client_line(line)
    )
    events = capture.events()
    # The capture saw the flows: requests, emails sent by the worker, the refused login.
    assert sum(e.get("logger") == "blockbot.access" for e in events) >= 15, capture.text[-2000:]
    assert any(e.get("event") == "email sent" for e in events)
    for name, value in secrets_seen.items():
        assert value not in logged, f"the {name} appears in the logs"
        if value.count(".") == 2:  # a JWT: not even its signature
            assert value.rsplit(".", 1)[1] not in logged, f"the {name}'s signature appears in the logs"


async def run_flows(
    svc: Any, auth: httpx.AsyncClient, api: httpx.AsyncClient, email: str, seen: dict[str, str]
) -> None:
    settings = svc.auth_settings
    body = {"email": email, "password": PASSWORD, "name": "Log Test", "org_name": "Log Org"}
    assert (await auth.post(f"{AUTH}/register", json=body)).status_code == 202
    verify = seen["verification token"] = await queued_token(settings, email, "verify_email")
    await run_worker_burst(settings)

    r = await auth.post(f"{AUTH}/email/verify", json={"token": verify, "password": PASSWORD})
    assert r.status_code == 200, r.text
    seen["access token (verify)"] = r.json()["access_token"]
    seen["refresh cookie (verify)"] = refresh_cookie(r)

    r = await auth.post(f"{AUTH}/login", json={"email": email, "password": seen["wrong password"]})
    assert r.status_code == 401
    r = await auth.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    access = seen["access token (login)"] = r.json()["access_token"]
    cookie = seen["refresh cookie (login)"] = refresh_cookie(r)

    auth.cookies.clear()
    r = await auth.post(f"{AUTH}/refresh", headers={"Cookie": f"bb_refresh={cookie}"})
    assert r.status_code == 200, r.text
    access = seen["access token (refresh)"] = r.json()["access_token"]
    cookie = seen["refresh cookie (refresh)"] = refresh_cookie(r)
    auth.cookies.clear()

    assert (await auth.get(f"{AUTH}/sessions", headers=bearer(access))).status_code == 200
    assert (await api.get("/api/v1/me", headers=bearer(access))).status_code == 200
    # An API key: created, used, presented in a query string and to auth, revoked, refused.
    r = await api.post(
        "/api/v1/api-keys", json={"name": "log bot", "scopes": ["read"]}, headers=bearer(access)
    )
    assert r.status_code == 201, r.text
    api_key = r.json()["key"]
    seen["api key secret"] = api_key[len(r.json()["prefix"]) + 1 :]
    assert (await api.get("/api/v1/me", headers=bearer(api_key))).status_code == 200
    assert (await api.get(f"/api/v1/nowhere?key={api_key}", headers=bearer(api_key))).status_code == 404
    assert (await auth.get(f"{AUTH}/sessions", headers=bearer(api_key))).status_code == 401
    r = await api.delete(f"/api/v1/api-keys/{r.json()['id']}", headers=bearer(access))
    assert r.status_code == 204
    assert (await api.get("/api/v1/me", headers=bearer(api_key))).status_code == 401
    assert (await api.get("/api/v1/me", headers=bearer(seen["forged bearer"]))).status_code == 401
    assert (
        await api.get("/api/v1/users", headers={"Authorization": f"Basic {seen['basic credentials']}"})
    ).status_code == 401
    # Unrouted paths, query strings and stray cookies: only the route template is logged.
    r = await auth.get(
        f"{AUTH}/nowhere/{seen['query secret']}?token={seen['query secret']}",
        headers={"Cookie": f"session={seen['stray cookie']}", **bearer(access)},
    )
    assert r.status_code == 404

    assert (await auth.post(f"{AUTH}/magic-link", json={"email": email})).status_code == 202
    magic = seen["magic-link token"] = await queued_token(settings, email, "magic_link")
    await run_worker_burst(settings)
    r = await auth.post(f"{AUTH}/magic-link/verify", json={"token": magic})
    assert r.status_code == 200, r.text
    seen["access token (magic link)"] = r.json()["access_token"]
    seen["refresh cookie (magic link)"] = refresh_cookie(r)
    auth.cookies.clear()
    # A second use is refused (and logged as such, without the token).
    assert (await auth.post(f"{AUTH}/magic-link/verify", json={"token": magic})).status_code in (400, 401)

    assert (await auth.post(f"{AUTH}/password/forgot", json={"email": email})).status_code == 202
    reset = seen["password-reset token"] = await queued_token(settings, email, "password_reset")
    await run_worker_burst(settings)
    r = await auth.post(f"{AUTH}/password/reset", json={"token": reset, "password": seen["new password"]})
    assert r.status_code == 204, r.text
    # Every session was revoked by the reset: the old cookie is now refused.
    r = await auth.post(f"{AUTH}/refresh", headers={"Cookie": f"bb_refresh={cookie}"})
    assert r.status_code == 401
    auth.cookies.clear()

    r = await auth.post(f"{AUTH}/login", json={"email": email, "password": seen["new password"]})
    assert r.status_code == 200, r.text
    access = seen["access token (new password)"] = r.json()["access_token"]
    cookie = seen["refresh cookie (new password)"] = refresh_cookie(r)
    auth.cookies.clear()
    r = await auth.post(f"{AUTH}/logout", headers={"Cookie": f"bb_refresh={cookie}", **bearer(access)})
    assert r.status_code == 204
    # The api refuses the logged-out session's still-unexpired access token.
    assert (await api.get("/api/v1/me", headers=bearer(access))).status_code == 401
