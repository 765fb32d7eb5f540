"""The auth service layer called directly (no HTTP): each rule raises its named error, writes its
audit events and leaves the rows the routes rely on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.auth.accounts import service as accounts
from services.auth.accounts.service import InvalidLink, Issued
from services.auth.deferred import drain
from services.auth.housekeeping.service import purge_dead_sessions
from services.auth.invitations import service as invitations
from services.auth.limits import mail_budget
from services.auth.sessions import service as sessions
from services.auth.state import ClientInfo
from shared.errors import NotFound, Unauthorized
from shared.roles import Role
from tests.auth.helpers import (
    PASSWORD,
    AuthApp,
    admin,
    invite,
    new_email,
    queued_emails,
    signed_in,
    signup,
)

CLIENT = ClientInfo(ip="198.51.100.9", user_agent="service test")


async def _events(dsn: str, actor: UUID) -> list[tuple[str, str, str]]:
    """(action, target type, target id) of the actor's audit events, oldest first."""
    async with admin(dsn) as conn:
        rows = await conn.fetch(
            "SELECT action, target_type, target_id FROM audit_log WHERE actor_user_id = $1 ORDER BY id",
            actor,
        )
    return [(r["action"], r["target_type"], r["target_id"]) for r in rows]


def _ids(token_response: httpx.Response) -> tuple[UUID, UUID]:
    """The org and user ids of a token response."""
    user: dict[str, Any] = token_response.json()["user"]
    return UUID(user["org_id"]), UUID(user["id"])


async def test_login_refuses_a_wrong_password_and_audits_both_outcomes(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, _ = await signup(client, auth.settings)
    with pytest.raises(Unauthorized):
        await accounts.login(auth.state, email=email, password="not the password", client=CLIENT)
    await drain()  # the failed login's audit is written after the answer
    issued = await accounts.login(auth.state, email=email.upper(), password=PASSWORD, client=CLIENT)
    assert isinstance(issued, Issued)  # no second factor: a session, not a challenge
    user = issued.identity.user
    assert user.email == email and user.role is Role.OWNER and user.verified
    events = await _events(admin_dsn, user.id)
    assert ("auth.login_failed", "user", str(user.id)) in events
    assert events[-2:] == [
        ("session.created", "session", str(issued.session_id)),
        ("auth.login", "user", str(user.id)),
    ]


async def test_a_replayed_refresh_token_revokes_its_whole_session(start_auth: Any, admin_dsn: str) -> None:
    # No grace window: the previous token is reuse as soon as it has been rotated.
    async with start_auth(refresh_reuse_grace_seconds=0) as auth, auth.client() as client:
        _, first = await signed_in(client, auth.settings)
        rotated = await sessions.refresh(auth.state, first, CLIENT)
        assert rotated.refresh_token != first
        with pytest.raises(Unauthorized):
            await sessions.refresh(auth.state, first, CLIENT)
        with pytest.raises(Unauthorized):
            await sessions.refresh(auth.state, rotated.refresh_token, CLIENT)
    user_id = rotated.identity.user.id
    events = await _events(admin_dsn, user_id)
    assert events[-1] == ("session.refresh_reuse_detected", "session", str(rotated.session_id))


async def test_sessions_are_listed_and_revoked_by_their_own_user_only(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, mine = await signup(client, auth.settings)
    _, theirs = await signup(client, auth.settings)
    org_id, user_id = _ids(mine)
    their_org, their_user = _ids(theirs)
    [own] = await sessions.list_sessions(auth.state, org_id=org_id, user_id=user_id)
    [other] = await sessions.list_sessions(auth.state, org_id=their_org, user_id=their_user)
    with pytest.raises(NotFound):
        await sessions.revoke_session(
            auth.state, org_id=org_id, user_id=user_id, session_id=other.id, client=CLIENT
        )
    for _ in range(2):  # revoking a revoked session again is a no-op
        await sessions.revoke_session(
            auth.state, org_id=org_id, user_id=user_id, session_id=own.id, client=CLIENT
        )
    assert await sessions.list_sessions(auth.state, org_id=org_id, user_id=user_id) == []
    assert [e for e in await _events(admin_dsn, user_id) if e[0] == "session.revoked"] == [
        ("session.revoked", "session", str(own.id))
    ]
    assert await sessions.logout_all(auth.state, org_id=their_org, user_id=their_user, client=CLIENT) == 1


async def test_an_invitation_is_only_as_good_as_its_senders_role_today(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, owner = await signup(client, auth.settings)
    token, invitation_id = await invite(admin_dsn, owner, new_email(), "admin")
    _, owner_id = _ids(owner)

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
    assert ("invitation.accepted", "invitation", invitation_id) in await _events(admin_dsn, member.id)
    with pytest.raises(InvalidLink):  # used
        await accept()


async def test_sign_in_and_reset_links_are_mailed_to_accounts_only(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, _ = await signup(client, auth.settings)
    stranger = new_email()
    for address in (email, stranger):
        budget = mail_budget(auth.state, address, CLIENT)
        await accounts.request_magic_link(auth.state, email=address, mail=budget)
        await accounts.request_password_reset(auth.state, email=address, mail=budget)
    mailed = [e["template"] for e in await queued_emails(auth.settings, email)]
    assert mailed[-2:] == ["magic_link", "password_reset"]
    assert await queued_emails(auth.settings, stranger) == []


async def test_housekeeping_goes_round_until_every_org_is_clean(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    users = [_ids((await signup(client, auth.settings))[1])[1] for _ in range(3)]
    dead_for = timedelta(seconds=auth.settings.refresh_token_ttl_seconds + 60)
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() - $2::interval WHERE user_id = ANY($1)", users, dead_for
        )
    # One org per round: three orgs (at least) take several rounds.
    purged, _ = await purge_dead_sessions(auth.state, batch=1)
    assert purged >= 3
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = ANY($1)", users) == 0
