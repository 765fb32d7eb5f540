"""One-time tokens: single use under concurrency, expiry, and only a hash at rest."""

from __future__ import annotations

import asyncio
import hashlib

import httpx

from shared.opaque_tokens import decode_token
from tests.auth.helpers import PREFIX, AuthApp, admin, last_token, new_email, register, signup, verify_email


async def test_magic_link_single_use_under_20_concurrent_verifies(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, _ = await signup(client, auth.settings)
    assert (await client.post(f"{PREFIX}/magic-link", json={"email": email})).status_code == 202
    token = await last_token(auth.settings, email, "magic_link")

    async def verify() -> int:
        async with auth.client() as c:
            response = await c.post(f"{PREFIX}/magic-link/verify", json={"token": token})
            return response.status_code

    statuses = await asyncio.gather(*(verify() for _ in range(20)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == 19, statuses


async def test_only_the_hash_is_stored(auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str) -> None:
    email = new_email()
    await register(client, email)
    token = await last_token(auth.settings, email, "verify_email")
    raw = decode_token(token)
    assert raw is not None and len(raw) == 32
    async with admin(admin_dsn) as conn:
        stored = await conn.fetchval("SELECT token_hash FROM signup_attempts WHERE email = $1", email)
    assert bytes(stored) == hashlib.sha256(raw).digest()


async def test_expired_tokens_refused(auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str) -> None:
    email, _ = await signup(client, auth.settings)
    await client.post(f"{PREFIX}/magic-link", json={"email": email})
    await client.post(f"{PREFIX}/password/forgot", json={"email": email})
    magic = await last_token(auth.settings, email, "magic_link")
    reset = await last_token(auth.settings, email, "password_reset")
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE one_time_tokens SET expires_at = now() - interval '1 second'"
            " WHERE user_id = (SELECT id FROM users WHERE email = $1)",
            email,
        )
    response = await client.post(f"{PREFIX}/magic-link/verify", json={"token": magic})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    response = await client.post(
        f"{PREFIX}/password/reset", json={"token": reset, "password": "a new password 1"}
    )
    assert response.status_code == 400

    fresh = new_email()
    await register(client, fresh)
    verify = await last_token(auth.settings, fresh, "verify_email")
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE signup_attempts SET expires_at = now() - interval '1 second' WHERE email = $1",
            fresh,
        )
    assert (await verify_email(client, verify)).status_code == 400


async def test_token_of_another_purpose_refused(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, _ = await signup(client, auth.settings)
    await client.post(f"{PREFIX}/password/forgot", json={"email": email})
    reset = await last_token(auth.settings, email, "password_reset")
    assert (await client.post(f"{PREFIX}/magic-link/verify", json={"token": reset})).status_code == 400
    assert (await client.post(f"{PREFIX}/magic-link/verify", json={"token": "x" * 43})).status_code == 400
