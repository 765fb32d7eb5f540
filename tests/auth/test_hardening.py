"""Hardening: CSRF on the cookie endpoints, body size, GET never consumes, pre-hijacking."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.auth.helpers import (
    PREFIX,
    AuthApp,
    bearer,
    do_refresh,
    last_token,
    login,
    new_email,
    refresh_cookie,
    register,
    signed_in,
    signup,
    verify_email,
)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:8080.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_cookie_endpoints_refuse_foreign_origins(
    headers: dict[str, str], auth: AuthApp, client: httpx.AsyncClient
) -> None:
    verified, token = await signed_in(client, auth.settings)
    client.cookies.clear()
    cookie = {"Cookie": f"bb_refresh={token}"}
    for path in ("/refresh", "/logout"):
        refused = await client.post(f"{PREFIX}{path}", headers={**cookie, **headers})
        assert refused.status_code == 403, (path, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "set-cookie" not in refused.headers
    # Neither request touched the session: the token is still current.
    assert (await client.get(f"{PREFIX}/sessions", headers=bearer(verified))).status_code == 200
    assert (await do_refresh(client, token)).status_code == 200


async def test_cookie_endpoints_accept_the_app_origin_and_non_browsers(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    _, token = await signed_in(client, auth.settings)
    client.cookies.clear()
    same_origin = await client.post(
        f"{PREFIX}/refresh",
        headers={
            "Cookie": f"bb_refresh={token}",
            "Origin": "http://localhost:8080",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert same_origin.status_code == 200, same_origin.text
    token = refresh_cookie(same_origin)
    no_origin = await do_refresh(client, token)  # curl, a server: no Origin header
    assert no_origin.status_code == 200
    client.cookies.clear()
    out = await client.post(
        f"{PREFIX}/logout",
        headers={"Cookie": f"bb_refresh={refresh_cookie(no_origin)}", "Origin": "http://localhost:8080"},
    )
    assert out.status_code == 204


async def test_cors_origins_may_use_the_cookie_endpoints(start_auth: object) -> None:
    origins = ["https://console.example"]
    async with start_auth(cors_origins=origins) as app, app.client() as c:  # type: ignore[operator]
        _, verified = await signup(c, app.settings)
        c.cookies.clear()
        response = await c.post(
            f"{PREFIX}/refresh",
            headers={"Cookie": f"bb_refresh={refresh_cookie(verified)}", "Origin": "https://console.example"},
        )
        assert response.status_code == 200, response.text


async def test_oversized_bodies_are_refused(client: httpx.AsyncClient) -> None:
    huge = {"email": new_email(), "password": "x" * 100_000}
    response = await client.post(f"{PREFIX}/login", json=huge)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/payload-too-large")
    assert response.json()["request_id"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed and counted
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    streamed = await client.post(
        f"{PREFIX}/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    # A normal body is untouched.
    assert (await login(client, new_email())).status_code == 401


@pytest.mark.parametrize(
    "path", ["/email/verify", "/magic-link/verify", "/password/reset", "/invitations/accept"]
)
async def test_get_on_token_routes_is_a_405_problem(
    path: str, auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email = new_email()
    await register(client, email)
    token = await last_token(auth.settings, email, "verify_email")
    probe = await client.get(f"{PREFIX}{path}", params={"token": token})
    assert probe.status_code == 405
    assert probe.headers["content-type"] == "application/problem+json"
    assert probe.json()["status"] == 405
    if path == "/email/verify":  # the probe consumed nothing
        verified = await verify_email(client, token)
        assert verified.status_code == 200


async def test_enumeration_headers_match_for_known_and_unknown(start_auth: object) -> None:
    """RateLimit-* and Set-Cookie headers do not tell a known address from an unknown one."""
    limits = {"ratelimit_auth_ip_per_minute": 50, "ratelimit_auth_email_per_hour": 7}
    async with start_auth(**limits) as app:  # type: ignore[operator]
        async with app.client("198.18.10.1") as c:
            known, _ = await signup(c, app.settings)
        for path, body in [
            ("/login", {"password": "not the password"}),
            ("/magic-link", {}),
            ("/password/forgot", {}),
            ("/email/verify-request", {}),
        ]:
            # (/register is left out here: the sign-up of `known` already counted once in its
            # per-address window, which reflects requests made for an address, not whether
            # the account exists; test_register_is_the_same_for_new_and_taken covers it.)
            answers = []
            for index, address in enumerate((known, new_email())):
                async with app.client(f"198.18.11.{index + 1}") as c:
                    answers.append(await c.post(f"{PREFIX}{path}", json={"email": address, **body}))
            a, b = answers
            assert a.status_code == b.status_code, path
            assert a.content.replace(a.headers.get("x-request-id", "").encode(), b"") == b.content.replace(
                b.headers.get("x-request-id", "").encode(), b""
            ), path
            visible = (
                "ratelimit-limit",
                "ratelimit-remaining",
                "set-cookie",
                "www-authenticate",
                "content-type",
                "content-length",
                "cache-control",
            )
            assert [a.headers.get(h) for h in visible] == [b.headers.get(h) for h in visible], path
            assert set(a.headers) - {"x-request-id"} == set(b.headers) - {"x-request-id"}, path
