"""The invitations service called directly (no HTTP): an invitation is only as good as its
sender's role at acceptance."""

from __future__ import annotations

import httpx
import pytest

from services.auth.accounts.service import InvalidLink, Issued
from services.auth.invitations import service as invitations
from shared.roles import Role
from tests.auth.helpers import (
    PASSWORD,
    AuthApp,
    admin,
    invite,
    new_email,
    signup,
)
from tests.auth.service_calls import CLIENT, audit_events, ids_of


async def test_an_invitation_is_only_as_good_as_its_senders_role_today(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, owner = await signup(client, auth.settings)
    token, invitation_id = await invite(admin_dsn, owner, new_email(), "admin")
    _, owner_id = ids_of(owner)

    async def set_owner_role(role: str) -> None:
        async with admin(admin_dsn) as conn:
            await conn.execute("UPDATE users SET role = $1 WHERE id = $2", role, owner_id)

    async def accept() -> Issued:
        issued = await invitations.accept_invitation(
            auth.state, token=token, name="Ada", password=PASSWORD, client=CLIENT
        )
        assert isinstance(issued, Issued)  # a new account has no second factor
        return issued

    await set_owner_role("member")  # a member may invite nobody
    with pytest.raises(InvalidLink):
        await accept()
    await set_owner_role("owner")  # the refusal consumed nothing: the link works once rights are back
    issued = await accept()
    member = issued.identity.user
    assert member.role is Role.ADMIN and member.verified
    assert ("invitation.accepted", "invitation", invitation_id) in await audit_events(admin_dsn, member.id)
    with pytest.raises(InvalidLink):  # used
        await accept()
