"""Recovery codes: single use, counted, regenerated as a whole, mailed and audited when used."""

from __future__ import annotations

import httpx

from tests.auth.factors.helpers import audit_actions, auth_header, challenge_of, enrol_totp, second_factor
from tests.auth.helpers import PREFIX, AuthApp, admin, login, queued_emails, signup


async def test_a_code_signs_in_once_is_mailed_and_audited(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    _, codes = await enrol_totp(client, token)
    async with admin(admin_dsn) as conn:
        stored = await conn.fetch(
            "SELECT code_hash FROM recovery_codes WHERE user_id = $1", verified.json()["user"]["id"]
        )
    assert len(stored) == 10
    assert all(code.encode() not in bytes(row["code_hash"]) for row in stored for code in codes)

    challenge = challenge_of(await login(client, email))["challenge"]
    # Written the way people copy it: upper case, spaces.
    done = await second_factor(client, challenge, recovery_code=codes[0].upper().replace("-", " "))
    assert done.status_code == 200, done.text

    mails = [m for m in await queued_emails(auth.settings, email) if m["template"] == "recovery_code_used"]
    assert len(mails) == 1 and mails[0]["context"]["remaining"] == 9
    assert "second_factor.recovery_code_used" in await audit_actions(admin_dsn, verified.json()["user"]["id"])
    factors = await client.get(f"{PREFIX}/factors", headers=auth_header(done.json()["access_token"]))
    assert factors.json()["recovery_codes_remaining"] == 9

    challenge = challenge_of(await login(client, email))["challenge"]
    reused = await second_factor(client, challenge, recovery_code=codes[0])
    assert reused.status_code == 401


async def test_regenerating_kills_the_old_set(auth: AuthApp, client: httpx.AsyncClient) -> None:
    email, verified = await signup(client, auth.settings)
    token = verified.json()["access_token"]
    _, old = await enrol_totp(client, token)
    regenerated = await client.post(f"{PREFIX}/factors/recovery-codes", headers=auth_header(token))
    assert regenerated.status_code == 200
    new = regenerated.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)

    challenge = challenge_of(await login(client, email))["challenge"]
    assert (await second_factor(client, challenge, recovery_code=old[1])).status_code == 401
    assert (await second_factor(client, challenge, recovery_code=new[1])).status_code == 200


async def test_no_codes_without_a_factor(auth: AuthApp, client: httpx.AsyncClient) -> None:
    _, verified = await signup(client, auth.settings)
    refused = await client.post(
        f"{PREFIX}/factors/recovery-codes", headers=auth_header(verified.json()["access_token"])
    )
    assert refused.status_code == 409
