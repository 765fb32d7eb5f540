"""Changing a password from a signed-in session: proven with the current one, only within the
step-up window; every other session ends (this one stays), audited, the user told by mail."""

from __future__ import annotations

from typing import Any

import httpx

from tests.auth.factors.helpers import audit_actions
from tests.auth.helpers import (
    PASSWORD,
    PREFIX,
    AuthApp,
    admin,
    bearer,
    do_refresh,
    login,
    queued_emails,
    refresh_cookie,
    signup,
)

NEW_PASSWORD = "a brand new password 7"


async def change(
    client: httpx.AsyncClient, signed_in: httpx.Response, current: str, new: str = NEW_PASSWORD
) -> httpx.Response:
    client.cookies.clear()
    return await client.post(
        f"{PREFIX}/password/change",
        json={"current_password": current, "new_password": new},
        headers=bearer(signed_in),
    )


async def test_change_ends_other_sessions_keeps_this_one_audits_and_mails(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, here = await signup(client, auth.settings)
    elsewhere = await login(client, email)
    assert elsewhere.status_code == 200

    assert (await change(client, here, PASSWORD)).status_code == 204

    assert (await do_refresh(client, refresh_cookie(here))).status_code == 200
    assert (await do_refresh(client, refresh_cookie(elsewhere))).status_code == 401
    assert (await login(client, email, PASSWORD)).status_code == 401
    assert (await login(client, email, NEW_PASSWORD)).status_code == 200
    user_id = here.json()["user"]["id"]
    assert "user.password_changed" in await audit_actions(admin_dsn, user_id)
    mails = [m for m in await queued_emails(auth.settings, email) if m["template"] == "password_changed"]
    assert len(mails) == 1


async def test_a_wrong_current_password_is_named_and_changes_nothing(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, here = await signup(client, auth.settings)
    refused = await change(client, here, "not the current password")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "current_password"]
    assert (await login(client, email, PASSWORD)).status_code == 200
    assert "user.password_changed" not in await audit_actions(admin_dsn, here.json()["user"]["id"])
    # The new password is held to the sign-up rules.
    short = await change(client, here, PASSWORD, new="short")
    assert short.status_code == 422
    assert short.json()["errors"][0]["loc"] == ["body", "new_password"]


async def test_an_old_sign_in_must_prove_itself_again(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, here = await signup(client, auth.settings)
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE sessions SET auth_time = now() - interval '1 hour' WHERE user_id = $1",
            here.json()["user"]["id"],
        )
    aged = await do_refresh(client, refresh_cookie(here))
    refused = await change(client, aged, PASSWORD)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/reauthentication-required")
    assert (await login(client, email, PASSWORD)).status_code == 200


async def test_guessing_the_current_password_is_limited_per_account(start_auth: Any) -> None:
    async with start_auth(ratelimit_auth_email_per_hour=3) as limited, limited.client() as client:
        email, here = await signup(client, limited.settings)
        for _ in range(3):
            assert (await change(client, here, "a wrong guess")).status_code == 422
        refused = await change(client, here, PASSWORD)
        assert refused.status_code == 429
        assert "retry-after" in refused.headers
        assert (await login(client, email, PASSWORD)).status_code == 200
