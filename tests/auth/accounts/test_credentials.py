"""Credentials: a reset voids logins already under way; invalid tokens cost no Argon2 time.

Security review findings 8 and 7 (second half), through HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prometheus_client import REGISTRY

from tests.auth.helpers import (
    PASSWORD,
    PREFIX,
    AuthApp,
    bearer,
    do_refresh,
    invite,
    last_token,
    login,
    new_email,
    signup,
)

UNKNOWN_TOKEN = "A" * 43
NEW_PASSWORD = "the password after the reset"


def hashes_done() -> float:
    value = REGISTRY.get_sample_value("auth_password_hash_duration_seconds_count", {"operation": "hash"})
    return value or 0.0


async def test_invalid_tokens_cost_no_password_hashing(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, owner = await signup(client, auth.settings)
    before = hashes_done()
    reset = await client.post(
        f"{PREFIX}/password/reset", json={"token": UNKNOWN_TOKEN, "password": NEW_PASSWORD}
    )
    accept = await client.post(
        f"{PREFIX}/invitations/accept",
        json={"token": UNKNOWN_TOKEN, "name": "Eve", "password": NEW_PASSWORD},
    )
    assert reset.status_code == accept.status_code == 400
    assert hashes_done() == before
    # A valid token of another purpose is just as invalid here.
    await client.post(f"{PREFIX}/magic-link", json={"email": email})
    magic = await last_token(auth.settings, email, "magic_link")
    wrong_purpose = await client.post(
        f"{PREFIX}/password/reset", json={"token": magic, "password": NEW_PASSWORD}
    )
    assert wrong_purpose.status_code == 400
    assert hashes_done() == before
    # Valid tokens do hash (the counter above is live).
    token, _ = await invite(admin_dsn, owner, new_email())
    accepted = await client.post(
        f"{PREFIX}/invitations/accept", json={"token": token, "name": "Ann", "password": PASSWORD}
    )
    assert accepted.status_code == 201
    assert hashes_done() == before + 1


async def test_a_login_checking_the_old_password_gets_no_session_after_a_reset(
    start_auth: Any,
) -> None:
    async with start_auth() as app:
        async with app.client() as c:
            email, _ = await signup(c, app.settings)
        passwords = app.state.passwords
        real_verify = passwords.verify
        checked, release = asyncio.Event(), asyncio.Event()

        async def verify_then_wait(stored: str | None, password: str) -> bool:
            matched: bool = await real_verify(stored, password)
            if password == PASSWORD and not release.is_set():
                checked.set()
                await release.wait()  # the reset happens while this login is "hashing"
            return matched

        passwords.verify = verify_then_wait
        try:
            async with app.client() as racing, app.client() as owner:
                pending = asyncio.create_task(login(racing, email, PASSWORD))
                await asyncio.wait_for(checked.wait(), 60)
                await owner.post(f"{PREFIX}/password/forgot", json={"email": email})
                token = await last_token(app.settings, email, "password_reset")
                done = await owner.post(
                    f"{PREFIX}/password/reset", json={"token": token, "password": NEW_PASSWORD}
                )
                assert done.status_code == 204
                release.set()
                late = await asyncio.wait_for(pending, 60)
                assert late.status_code == 401, late.text
                assert "set-cookie" not in late.headers
                # The new password works; the old one no longer does.
                fresh = await login(owner, email, NEW_PASSWORD)
                assert fresh.status_code == 200
                assert (await login(owner, email, PASSWORD)).status_code == 401
                sessions = await owner.get(f"{PREFIX}/sessions", headers=bearer(fresh))
                assert len(sessions.json()["items"]) == 1
                assert (await do_refresh(owner, "x" * 43)).status_code == 401
        finally:
            passwords.verify = real_verify
