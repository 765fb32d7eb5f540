"""The accounts service called directly (no HTTP): each rule raises its named error, writes its
audit events and leaves the rows the routes rely on."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from services.auth.accounts import service as accounts
from services.auth.accounts.service import Issued
from services.auth.deferred import drain
from services.auth.limits import mail_budget
from shared.context import request_id_var
from shared.errors import Unauthorized
from shared.roles import Role
from tests.auth.helpers import (
    PASSWORD,
    AuthApp,
    admin,
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


async def test_a_user_disabled_after_the_lookup_gets_the_wrong_password_answer_and_nothing_is_written(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    email, _ = await signup(client, auth.settings)
    with pytest.raises(Unauthorized) as wrong:
        await accounts.login(auth.state, email=email, password="not the password", client=CLIENT)
    await drain()
    verify = auth.state.passwords.verify

    async def verify_then_disable(stored_hash: str | None, password: str) -> bool:
        # An operator disables the user while the password is being checked (after the lookup
        # read the row, before the login's transaction locks it).
        matched = await verify(stored_hash, password)
        async with admin(admin_dsn) as conn:
            await conn.execute("UPDATE users SET disabled_at = now() WHERE lower(email) = $1", email)
        return matched

    monkeypatch.setattr(auth.state.passwords, "verify", verify_then_disable)
    with pytest.raises(Unauthorized) as disabled:
        await accounts.login(auth.state, email=email, password=PASSWORD, client=CLIENT)
    assert (disabled.value.status, disabled.value.detail) == (wrong.value.status, wrong.value.detail)
    async with admin(admin_dsn) as conn:
        user_id = await conn.fetchval("SELECT id FROM users WHERE lower(email) = $1", email)
        sessions = await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", user_id)
    # Only the sign-up's session: the refused login opened none and audited no login.
    assert sessions == 1
    events = await audit_events(admin_dsn, user_id)
    assert events[-1] == ("auth.login_failed", "user", str(user_id))


async def test_a_password_login_audits_the_session_and_the_login_with_the_request_and_address(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, _ = await signup(client, auth.settings)
    request_id = uuid.uuid4().hex
    token = request_id_var.set(request_id)
    try:
        issued = await accounts.login(auth.state, email=email, password=PASSWORD, client=CLIENT)
    finally:
        request_id_var.reset(token)
    assert isinstance(issued, Issued)
    async with admin(admin_dsn) as conn:
        rows = await conn.fetch(
            "SELECT id, org_id, action, target_type, target_id, details, request_id, host(ip_address) AS ip"
            " FROM audit_log WHERE request_id = $1 ORDER BY id",
            request_id,
        )
    user = issued.identity.user
    assert [(r["action"], r["target_type"], r["target_id"]) for r in rows] == [
        ("session.created", "session", str(issued.session_id)),
        ("auth.login", "user", str(user.id)),
    ]
    assert [json.loads(r["details"]) for r in rows] == [
        {"method": "password", "amr": ["pwd"], "acr": "aal1"},
        {"method": "password"},
    ]
    assert {(r["org_id"], r["ip"]) for r in rows} == {(user.org_id, CLIENT.ip)}
    # The identity is the locked row with its org, as a fresh read gives it.
    assert issued.identity.org_name and issued.identity.user.disabled_at is None


async def test_concurrent_wrong_passwords_are_each_refused_and_audited_once(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, _ = await signup(client, auth.settings)
    attempts = 4
    results = await asyncio.gather(
        *(
            accounts.login(auth.state, email=email, password=f"wrong {i}", client=CLIENT)
            for i in range(attempts)
        ),
        return_exceptions=True,
    )
    await drain()
    assert all(isinstance(r, Unauthorized) for r in results)
    async with admin(admin_dsn) as conn:
        user = await conn.fetchrow("SELECT id, org_id FROM users WHERE lower(email) = $1", email)
        assert user is not None
        failed = await conn.fetch(
            "SELECT org_id, target_type, target_id, details, host(ip_address) AS ip FROM audit_log"
            " WHERE actor_user_id = $1 AND action = 'auth.login_failed'",
            user["id"],
        )
    # Each in the user's org (written under its tenant binding), on the user, from the client.
    assert [(r["org_id"], r["target_type"], r["target_id"], r["ip"]) for r in failed] == [
        (user["org_id"], "user", str(user["id"]), CLIENT.ip)
    ] * attempts
    assert all(json.loads(r["details"]) == {} for r in failed)
