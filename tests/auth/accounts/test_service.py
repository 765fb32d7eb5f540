"""The accounts service called directly (no HTTP): each rule raises its named error, writes its
audit events and leaves the rows the routes rely on."""

from __future__ import annotations

import httpx
import pytest

from services.auth.accounts import service as accounts
from services.auth.accounts.service import Issued
from services.auth.deferred import drain
from services.auth.limits import mail_budget
from shared.errors import Unauthorized
from shared.roles import Role
from tests.auth.helpers import (
    PASSWORD,
    AuthApp,
    new_email,
    queued_emails,
    signup,
)
from tests.auth.service_calls import CLIENT, audit_events


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
    events = await audit_events(admin_dsn, user.id)
    assert ("auth.login_failed", "user", str(user.id)) in events
    assert events[-2:] == [
        ("session.created", "session", str(issued.session_id)),
        ("auth.login", "user", str(user.id)),
    ]


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
