"""Names with control characters are a 422, never stored nor mailed (findings 6 and 11)."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.helpers import PASSWORD, PREFIX, AuthApp, admin, invite, new_email, queued_emails, signup

BAD_NAMES = ["Ada\nBcc: victim@example.com", "Ada\x00", "Ada\rBcc: x", "Ada\u202egnp.exe", "Ada\x7f"]


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize("field", ["name", "org_name"])
async def test_register_refuses_control_characters_in_names(
    auth: AuthApp, client: httpx.AsyncClient, field: str, bad: str
) -> None:
    email = new_email()
    body = {"email": email, "password": PASSWORD, "name": "Ada", "org_name": "Acme", field: bad}
    response = await client.post(f"{PREFIX}/register", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"][-1] == field
    assert await queued_emails(auth.settings, email) == []


async def test_invitation_acceptance_refuses_a_nul_in_the_name(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, owner = await signup(client, auth.settings)
    invitee = new_email()
    token, _ = await invite(admin_dsn, owner, invitee)
    body = {"token": token, "name": "Grace\x00", "password": PASSWORD}
    refused = await client.post(f"{PREFIX}/invitations/accept", json=body)
    assert refused.status_code == 422
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", invitee) == 0
    accepted = await client.post(f"{PREFIX}/invitations/accept", json={**body, "name": "Grace"})
    assert accepted.status_code == 201
