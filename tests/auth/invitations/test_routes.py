"""An invitation is only as good as its sender's rights at acceptance (security review finding 5)."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.helpers import PASSWORD, PREFIX, AuthApp, admin, invite, new_email, signup


async def _accept(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(
        f"{PREFIX}/invitations/accept", json={"token": token, "name": "Mallory", "password": PASSWORD}
    )


@pytest.fixture
async def insider(auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str) -> httpx.Response:
    """An admin an owner invited: the token response of their acceptance."""
    _, owner = await signup(client, auth.settings)
    token, _ = await invite(admin_dsn, owner, new_email(), "admin")
    accepted = await _accept(client, token)
    assert accepted.status_code == 201, accepted.text
    return accepted


async def _alter(admin_dsn: str, user: httpx.Response, statement: str) -> None:
    """Run `statement` on the user of a token response (its id is $1), bypassing the api."""
    async with admin(admin_dsn) as conn:
        await conn.execute(statement, user.json()["user"]["id"])


async def test_invitations_of_a_demoted_admin_cannot_be_accepted(
    client: httpx.AsyncClient, admin_dsn: str, insider: httpx.Response
) -> None:
    for_accomplice, _ = await invite(admin_dsn, insider, new_email(), "admin")
    as_member, _ = await invite(admin_dsn, insider, new_email(), "member")
    # Demoted by the owner (without the api's revocation).
    await _alter(admin_dsn, insider, "UPDATE users SET role = 'member' WHERE id = $1")
    refused = await _accept(client, for_accomplice)
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/invalid-token")
    assert (await _accept(client, as_member)).status_code == 400


async def test_invitations_of_a_removed_admin_cannot_be_accepted(
    client: httpx.AsyncClient, admin_dsn: str, insider: httpx.Response
) -> None:
    token, _ = await invite(admin_dsn, insider, new_email(), "admin")
    await _alter(admin_dsn, insider, "DELETE FROM users WHERE id = $1")
    assert (await _accept(client, token)).status_code == 400


async def test_an_admin_cannot_have_invited_an_owner(
    client: httpx.AsyncClient, admin_dsn: str, insider: httpx.Response
) -> None:
    token, _ = await invite(admin_dsn, insider, new_email(), "owner")
    assert (await _accept(client, token)).status_code == 400
    still_admin, _ = await invite(admin_dsn, insider, new_email(), "admin")
    accepted = await _accept(client, still_admin)
    assert accepted.status_code == 201
    assert accepted.json()["user"]["role"] == "admin"
