"""No account enumeration, rate limits on the unauthenticated endpoints, fail closed on Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.auth.accounts import purge_unverified_signups
from tests.auth.conftest import (
    PASSWORD,
    PREFIX,
    AuthApp,
    admin,
    comparable,
    login,
    new_email,
    queued_emails,
    register,
    signup,
)


async def test_login_failure_is_the_same_for_known_and_unknown(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    known, _ = await signup(client, auth.settings)
    wrong_password = await login(client, known, "not the password")
    unknown = await login(client, new_email(), "not the password")
    assert wrong_password.status_code == unknown.status_code == 401
    a, b = comparable(wrong_password), comparable(unknown)
    assert a[0] == b[0]
    assert a[1] is not None and b[1] is not None
    a_body, b_body = dict(a[1]), dict(b[1])
    assert a_body.pop("instance") == b_body.pop("instance")
    assert a_body == b_body
    assert wrong_password.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    assert "set-cookie" not in wrong_password.headers and "set-cookie" not in unknown.headers


@pytest.mark.parametrize("path", ["/magic-link", "/password/forgot", "/email/verify-request"])
async def test_email_requests_are_the_same_for_known_and_unknown(
    path: str, auth: AuthApp, client: httpx.AsyncClient
) -> None:
    known, _ = await signup(client, auth.settings)
    pending = new_email()
    await register(client, pending)
    responses = [
        await client.post(f"{PREFIX}{path}", json={"email": address})
        for address in (known, pending, new_email())
    ]
    assert {r.status_code for r in responses} == {202}
    assert len({r.content for r in responses}) == 1
    assert len({frozenset(k for k in r.headers if k != "x-request-id") for r in responses}) == 1


async def test_register_is_the_same_for_new_and_taken(auth: AuthApp, client: httpx.AsyncClient) -> None:
    taken, _ = await signup(client, auth.settings)
    fresh = new_email()
    a, b = await register(client, taken, "another password"), await register(client, fresh)
    assert comparable(a) == comparable(b) == (202, {"status": "verification_sent"})
    assert a.headers.keys() - {"x-request-id"} == b.headers.keys() - {"x-request-id"}
    assert (await queued_emails(auth.settings, taken))[-1]["template"] == "account_exists"
    assert (await queued_emails(auth.settings, fresh))[-1]["template"] == "verify_email"


async def test_login_rate_limit(start_auth: Any) -> None:
    async with start_auth(ratelimit_auth_ip_per_minute=3) as limited, limited.client("203.0.113.9") as c:
        email, _ = await signup(c, limited.settings)
        responses = [await login(c, email, "not the password") for _ in range(3)]
        assert [r.status_code for r in responses] == [401, 401, 401]
        assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0"]
        assert all(r.headers["ratelimit-limit"] == "3" for r in responses)
        refused = await login(c, email)  # even the right password: limited before any lookup
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-remaining"] == "0"
        assert "ratelimit-reset" in refused.headers
        # Another client address has its own window.
        async with limited.client("203.0.113.10") as other:
            assert (await login(other, email)).status_code == 200


async def test_per_email_rate_limit(start_auth: Any) -> None:
    async with start_auth(ratelimit_auth_email_per_hour=2) as limited:
        email = new_email()
        for index in range(2):
            async with limited.client(f"192.0.2.{index + 1}") as c:
                r = await c.post(f"{PREFIX}/magic-link", json={"email": email.upper()})
                assert r.status_code == 202
        async with limited.client("192.0.2.50") as c:
            refused = await c.post(f"{PREFIX}/magic-link", json={"email": email})
        assert refused.status_code == 429
        assert "retry-after" in refused.headers


async def test_redis_down_fails_closed(start_auth: Any) -> None:
    async with start_auth(redis_url="redis://127.0.0.1:1/0") as broken, broken.client() as c:
        for path, body in [
            ("/login", {"email": new_email(), "password": PASSWORD}),
            ("/magic-link", {"email": new_email()}),
            ("/password/forgot", {"email": new_email()}),
            ("/email/verify-request", {"email": new_email()}),
            ("/register", {"email": new_email(), "password": PASSWORD, "name": "A", "org_name": "B"}),
        ]:
            response = await c.post(f"{PREFIX}{path}", json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        c.cookies.clear()
        refreshed = await c.post(f"{PREFIX}/refresh", headers={"Cookie": "bb_refresh=" + "A" * 43})
        assert refreshed.status_code == 401  # unknown token: no Redis needed to refuse it


async def test_rehash_on_login_when_parameters_change(
    auth: AuthApp, start_auth: Any, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, _ = await signup(client, auth.settings)
    async with admin(admin_dsn) as conn:
        before = await conn.fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    assert "m=8192,t=1,p=1" in before
    async with start_auth(argon2_time_cost=2) as stronger, stronger.client() as c:
        assert (await login(c, email)).status_code == 200
    async with admin(admin_dsn) as conn:
        after = await conn.fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    assert after.startswith("$argon2id$") and "m=8192,t=2,p=1" in after
    assert (await login(client, email)).status_code == 200


async def test_unverified_signups_are_purged(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    stale, kept = new_email(), new_email()
    await register(client, stale)
    await register(client, kept)
    verified, _ = await signup(client, auth.settings)
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE users SET updated_at = now() - interval '30 days' WHERE email = ANY($1)",
            [stale, verified],
        )
    assert await purge_unverified_signups(auth.state) >= 1
    async with admin(admin_dsn) as conn:
        remaining = {
            r["email"] for r in await conn.fetch(
                "SELECT email FROM users WHERE email = ANY($1)", [stale, kept, verified]
            )
        }
    assert remaining == {kept, verified}
    # The address is free again.
    assert (await register(client, stale)).status_code == 202


async def test_password_rules(client: httpx.AsyncClient) -> None:
    for password in ("Qz9!kp", "Qz9!kp" * 22):
        response = await register(client, new_email(), password)
        assert response.status_code == 422
        assert password not in response.text
    bad_email = await client.post(
        f"{PREFIX}/register",
        json={"email": "not-an-email", "password": PASSWORD, "name": "A", "org_name": "B"},
    )
    assert bad_email.status_code == 422
