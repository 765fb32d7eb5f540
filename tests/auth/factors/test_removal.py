"""Removing the last second factor: refused while the org requires one; otherwise the user's
other sessions (entered with the factor) are revoked, the removing one stays."""

from __future__ import annotations

import httpx

from tests.auth.factors.authenticator import SoftAuthenticator
from tests.auth.factors.helpers import (
    auth_header,
    challenge_of,
    code_at,
    enrol_passkey,
    enrol_totp,
    second_factor,
)
from tests.auth.helpers import PREFIX, AuthApp, admin, do_refresh, login, refresh_cookie, signup


async def test_last_factor_stays_while_the_org_requires_one(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    await enrol_totp(client, token)
    passkey = await enrol_passkey(client, token, SoftAuthenticator())
    assert passkey.status_code == 201
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE organizations SET require_second_factor = true WHERE id = $1",
            verified.json()["user"]["org_id"],
        )

    # Two factors: either may go, not both.
    assert (await client.delete(f"{PREFIX}/factors/totp", headers=auth_header(token))).status_code == 204
    last = await client.delete(
        f"{PREFIX}/factors/passkeys/{passkey.json()['passkey']['id']}", headers=auth_header(token)
    )
    assert last.status_code == 409, last.text
    assert last.headers["content-type"].startswith("application/problem+json")
    assert last.json()["type"].endswith("/last-second-factor")
    listed = (await client.get(f"{PREFIX}/factors", headers=auth_header(token))).json()
    assert len(listed["passkeys"]) == 1 and listed["recovery_codes_remaining"] == 10


async def test_removing_the_last_factor_revokes_the_other_sessions(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    secret, _ = await enrol_totp(client, token)
    elsewhere = await second_factor(
        client, challenge_of(await login(client, email))["challenge"], totp_code=code_at(secret, 1)
    )
    assert elsewhere.status_code == 200

    assert (await client.delete(f"{PREFIX}/factors/totp", headers=auth_header(token))).status_code == 204
    # The aal2 session opened with the factor is gone; the one that removed it stays.
    assert (await do_refresh(client, refresh_cookie(elsewhere))).status_code == 401
    assert (await do_refresh(client, refresh_cookie(verified))).status_code == 200
