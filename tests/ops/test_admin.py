"""The admin command line (`python -m services.admin`) as a real process, against the real
PostgreSQL and Redis the auth and api apps use: every action takes effect at once and is audited
as done by the operator; bad input is a clear error and a non-zero exit, with nothing printed
that is secret.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from tests.auth.helpers import (
    PASSWORD,
    PREFIX,
    bearer,
    comparable,
    do_refresh,
    last_token,
    login,
    new_email,
    refresh_cookie,
    register,
    signup,
)
from tests.ops.helpers import AdminCli

pytestmark = pytest.mark.slow

OWNER_PASSWORD = "operator chosen passphrase 1"


def _create_org(name: str, owner_email: str, owner_name: str, *, password_stdin: bool = True) -> list[str]:
    """The arguments of `create-org`; the password is read from stdin unless told otherwise."""
    args = ["create-org", "--name", name, "--owner-email", owner_email, "--owner-name", owner_name]
    return [*args, "--password-stdin"] if password_stdin else args


def lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def operator_events(db: asyncpg.Connection, user_id: Any) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT action, actor_user_id, details FROM audit_log WHERE target_id = $1"
        " AND action LIKE 'admin.%' ORDER BY id",
        str(user_id),
    )


async def test_create_org_with_owner_who_can_log_in_without_email(
    admin_cli: AdminCli,
    start_auth,
    db_admin,
):
    email = new_email()
    result = await admin_cli(
        "--json", *_create_org("First Install", email.upper(), "Olga Owner"), stdin=OWNER_PASSWORD + "\n"
    )
    assert result.returncode == 0, result.stderr
    created = lines(result)[0]
    assert OWNER_PASSWORD not in result.stdout + result.stderr
    async with start_auth() as auth, auth.client() as client:
        response = await login(client, email, OWNER_PASSWORD)
        assert response.status_code == 200, response.text
        assert response.json()["user"]["role"] == "owner"
        assert response.json()["org"]["id"] == created["org_id"]
    events = await operator_events(db_admin, created["user_id"])
    assert [e["action"] for e in events] == ["admin.org_created"]
    assert events[0]["actor_user_id"] is None
    assert json.loads(events[0]["details"])["operator"] == "ops-alice"

    listed = await admin_cli("--json", "users", "--org", created["org_id"])
    assert listed.returncode == 0, listed.stderr
    (row,) = lines(listed)
    assert row["email"] == email and row["role"] == "owner" and row["disabled_at"] == "-"
    orgs = await admin_cli("orgs")
    assert "First Install" in orgs.stdout
    # Nothing secret in any listing: no hashes, no passwords, no connection password.
    everything = listed.stdout + orgs.stdout
    assert "argon2" not in everything and OWNER_PASSWORD not in everything

    again = await admin_cli(*_create_org("Twice", email, "Other"), stdin=OWNER_PASSWORD + "\n")
    assert again.returncode == 1
    assert "already exists" in again.stderr


async def test_bad_input_is_a_clear_error_and_changes_nothing(admin_cli: AdminCli, db_admin):
    before = await db_admin.fetchval("SELECT count(*) FROM organizations")
    short = "short"
    result = await admin_cli(*_create_org("X", new_email(), "Y"), stdin=short + "\n")
    assert result.returncode == 2
    assert "password" in result.stderr and short not in result.stderr
    bad_email = await admin_cli(*_create_org("X", "not-an-address", "Y"), stdin=OWNER_PASSWORD + "\n")
    assert bad_email.returncode == 2 and "owner_email" in bad_email.stderr
    no_terminal = await admin_cli(*_create_org("X", new_email(), "Y", password_stdin=False))
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    assert await db_admin.fetchval("SELECT count(*) FROM organizations") == before

    for args, status, text in (
        (("disable", "nobody"), 2, "neither a user id nor an email"),
        (("disable", "nobody@example.com"), 1, "no user"),
        (("enable", str(uuid.uuid4())), 1, "no user"),
        (("users", "--org", "not-a-uuid"), 2, "not an organization id"),
        (("users", "--org", str(uuid.uuid4())), 1, "no organization"),
        (("frobnicate",), 2, "invalid choice"),
    ):
        result = await admin_cli(*args)
        assert result.returncode == status, (args, result.stderr)
        assert text in result.stderr, (args, result.stderr)


async def test_connection_problems_are_named_without_the_password(admin_cli: AdminCli, database):
    # The api role sees one tenant at most: refused with a pointer to the right URL.
    wrong_role = await admin_cli("orgs", DATABASE_URL=database.api_url)
    assert wrong_role.returncode == 1
    assert "administrator URL" in wrong_role.stderr
    password = database.api_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    unreachable = await admin_cli(
        "orgs", DATABASE_URL=f"postgresql://postgres:{password}@127.0.0.1:1/nowhere"
    )
    assert unreachable.returncode == 3, unreachable.stderr
    assert "unreachable" in unreachable.stderr and password not in unreachable.stderr
    missing = await admin_cli("orgs", DATABASE_URL="")
    assert missing.returncode == 2 and "DATABASE_URL" in missing.stderr


async def test_disable_stops_login_refresh_and_access_tokens_at_once(
    admin_cli: AdminCli,
    start_auth,
    start_api,
    db_admin,
):
    async with start_auth() as auth, start_api() as api, auth.client() as client:
        email, verified = await signup(client, auth.settings)
        second = await login(client, email)
        headers = bearer(second)
        cookie = refresh_cookie(second)
        assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200

        result = await admin_cli("disable", email)
        assert result.returncode == 0, result.stderr
        assert "revoked 2 session(s)" in result.stdout

        # Access tokens of both sessions stop at once (revocation marker and the user row).
        assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 401
        assert (await api.client.get("/api/v1/me", headers=bearer(verified))).status_code == 401
        assert (await do_refresh(client, cookie)).status_code == 401
        # Login: the answer a wrong password gets, so a disabled account is not revealed.
        refused = await login(client, email)
        wrong = await login(client, email, "a wrong password 123")
        assert refused.status_code == 401
        assert comparable(refused) == comparable(wrong)
        assert (
            await db_admin.fetchval(
                "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id"
                " WHERE lower(u.email) = $1 AND s.revoked_at IS NULL",
                email,
            )
            == 0
        )

        again = await admin_cli("disable", email)
        assert again.returncode == 0 and "already disabled" in again.stdout

        enabled = await admin_cli("enable", email)
        assert enabled.returncode == 0, enabled.stderr
        back = await login(client, email)
        assert back.status_code == 200
        assert (await api.client.get("/api/v1/me", headers=bearer(back))).status_code == 200

    user_id = await db_admin.fetchval("SELECT id FROM users WHERE lower(email) = $1", email)
    events = await operator_events(db_admin, user_id)
    assert [e["action"] for e in events] == ["admin.user_disabled", "admin.user_enabled"]
    assert json.loads(events[0]["details"]) == {
        "operator": "ops-alice",
        "via": "admin-cli",
        "sessions_revoked": 2,
    }


async def test_disabled_user_cannot_start_a_session_by_magic_link(
    admin_cli: AdminCli,
    start_auth,
    db_admin,
):
    async with start_auth() as auth, auth.client() as client:
        email, _ = await signup(client, auth.settings)
        assert (await admin_cli("disable", email)).returncode == 0
        assert (await client.post(f"{PREFIX}/magic-link", json={"email": email})).status_code == 202
        token = await last_token(auth.settings, email, "magic_link")
        response = await client.post(f"{PREFIX}/magic-link/verify", json={"token": token})
        assert response.status_code == 401
    user_id = await db_admin.fetchval("SELECT id FROM users WHERE lower(email) = $1", email)
    assert (
        await db_admin.fetchval(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", user_id
        )
        == 0
    )


async def test_revoke_sessions_ends_every_session_but_not_the_account(
    admin_cli: AdminCli,
    start_auth,
    start_api,
):
    async with start_auth() as auth, start_api() as api, auth.client() as client:
        email, first = await signup(client, auth.settings)
        second = await login(client, email)
        result = await admin_cli("--json", "revoke-sessions", email)
        assert result.returncode == 0, result.stderr
        assert lines(result)[0]["sessions_revoked"] == "2"
        for issued in (first, second):
            assert (await api.client.get("/api/v1/me", headers=bearer(issued))).status_code == 401
            assert (await do_refresh(client, refresh_cookie(issued))).status_code == 401
        fresh = await login(client, email)
        assert fresh.status_code == 200
        assert (await api.client.get("/api/v1/me", headers=bearer(fresh))).status_code == 200


async def test_revocation_needs_redis_or_changes_nothing(admin_cli: AdminCli, start_auth):
    async with start_auth() as auth, auth.client() as client:
        email, issued = await signup(client, auth.settings)
        result = await admin_cli("disable", email, REDIS_URL="redis://127.0.0.1:1/0")
        assert result.returncode == 3
        assert "nothing was changed" in result.stderr
        # Still enabled, the session still refreshes.
        assert (await do_refresh(client, refresh_cookie(issued))).status_code == 200


@asynccontextmanager
async def _pending_signup(start_auth: Callable[..., Any]) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A running auth service, a client of it, and an address with one pending sign-up."""
    async with start_auth() as auth, auth.client() as client:
        email = new_email()
        assert (await register(client, email)).status_code == 202
        yield client, email


async def test_verify_email_never_activates_a_pending_signup(admin_cli: AdminCli, start_auth, db_admin):
    """Second security review, finding 1, tried as an attacker would: the attacker registers the
    victim's address; the victim's own sign-up is lost (it was never recorded when the address's
    mail budget was full); the operator runs verify-email for the victim as the README said for a
    lost mail, and the attacker's single attempt became the victim's account."""
    async with _pending_signup(start_auth) as (client, email):  # the attacker's attempt, alone
        result = await admin_cli("verify-email", email)
        assert result.returncode == 1
        assert "1 pending sign-up" in result.stderr
        # The safe path is printed: create the account, then a password reset for the owner.
        assert "create-org" in result.stderr and "password/forgot" in result.stderr
        assert (await login(client, email)).status_code == 401
    assert await db_admin.fetchval("SELECT count(*) FROM users WHERE lower(email) = $1", email) == 0
    assert await db_admin.fetchval("SELECT count(*) FROM signup_attempts WHERE email = $1", email) == 1


async def test_verify_email_refuses_several_signups_too(admin_cli: AdminCli, start_auth, db_admin):
    async with _pending_signup(start_auth) as (client, email):
        assert (await register(client, email, "a squatter's password")).status_code == 202
        result = await admin_cli("verify-email", email)
        assert result.returncode == 1
        assert "2 pending sign-up" in result.stderr and "create-org" in result.stderr
        assert (await login(client, email)).status_code == 401
    assert await db_admin.fetchval("SELECT count(*) FROM users WHERE lower(email) = $1", email) == 0
    assert await db_admin.fetchval("SELECT count(*) FROM signup_attempts WHERE email = $1", email) == 2


async def test_the_safe_path_gives_the_mailbox_owner_the_account(admin_cli: AdminCli, start_auth, db_admin):
    """What verify-email's refusal says to do: create-org drops the pending attempts (the
    attacker's password is gone), and the password reset reaches only the mailbox owner."""
    async with start_auth() as auth, auth.client() as client:
        email = new_email()
        assert (await register(client, email)).status_code == 202  # PASSWORD: the attacker's
        created = await admin_cli(*_create_org("Victim Org", email, "Vic"), stdin=OWNER_PASSWORD + "\n")
        assert created.returncode == 0, created.stderr
        assert await db_admin.fetchval("SELECT count(*) FROM signup_attempts WHERE email = $1", email) == 0
        assert (await login(client, email, PASSWORD)).status_code == 401  # the attempt's password
        assert (await client.post(f"{PREFIX}/password/forgot", json={"email": email})).status_code == 202
        token = await last_token(auth.settings, email, "password_reset")
        reset = await client.post(
            f"{PREFIX}/password/reset", json={"token": token, "password": "owner's choice 1"}
        )
        assert reset.status_code == 204, reset.text
        assert (await login(client, email, "owner's choice 1")).status_code == 200


async def test_verify_email_marks_an_unverified_user(admin_cli: AdminCli, db_admin):
    org_id = await db_admin.fetchval("INSERT INTO organizations (name) VALUES ('Legacy') RETURNING id")
    email = new_email()
    user_id = await db_admin.fetchval(
        "INSERT INTO users (org_id, email, name, role) VALUES ($1, $2, 'Lee', 'owner') RETURNING id",
        org_id,
        email,
    )
    result = await admin_cli("verify-email", str(user_id))
    assert result.returncode == 0, result.stderr
    assert await db_admin.fetchval("SELECT email_verified_at FROM users WHERE id = $1", user_id)
    assert [e["action"] for e in await operator_events(db_admin, user_id)] == ["admin.email_verified"]


async def test_disable_revokes_the_api_keys_the_user_created(
    admin_cli: AdminCli, start_auth, start_api, db_admin
):
    async with start_auth() as auth, start_api() as api, auth.client() as client:
        email, verified = await signup(client, auth.settings)
        created = await api.client.post(
            "/api/v1/api-keys", json={"name": "bot", "scopes": ["read"]}, headers=bearer(verified)
        )
        assert created.status_code == 201, created.text
        key_id = uuid.UUID(created.json()["id"])

        result = await admin_cli("disable", email)
        assert result.returncode == 0, result.stderr
        assert await db_admin.fetchval("SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = $1", key_id)
        event = await db_admin.fetchrow(
            "SELECT details FROM audit_log WHERE action = 'admin.user_disabled' AND target_id = $1",
            verified.json()["user"]["id"],
        )
        assert json.loads(event["details"])["api_keys_revoked"] == [str(key_id)]
