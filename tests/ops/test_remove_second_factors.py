"""`python -m services.admin remove-second-factors USER`: the lost-device path, as a real process.

Every second factor goes (TOTP, passkeys, recovery codes), the password alone signs in again,
and the removal is audited with the operator's name and mailed to the user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from tests.auth.factors.authenticator import SoftAuthenticator
from tests.auth.factors.helpers import challenge_of, code_at, enrol_passkey, enrol_totp, second_factor
from tests.auth.helpers import do_refresh, login, queued_emails, refresh_cookie, signup
from tests.ops.helpers import AdminCli

pytestmark = pytest.mark.slow


async def test_removes_every_factor_audited_and_mailed(
    admin_cli: AdminCli, start_auth: Callable[..., Any], db_admin: asyncpg.Connection
) -> None:
    async with start_auth() as auth, auth.client() as client:
        email, verified = await signup(client, auth.settings)
        token = verified.json()["access_token"]
        await enrol_totp(client, token)
        assert (await enrol_passkey(client, token, SoftAuthenticator())).status_code == 201
        challenge_of(await login(client, email))

        result = await admin_cli("--json", "remove-second-factors", email)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["user_id"] == verified.json()["user"]["id"]

        assert (await login(client, email)).status_code == 200
        user_id = verified.json()["user"]["id"]
        for table in ("totp_factors", "webauthn_credentials", "recovery_codes"):
            assert await db_admin.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", user_id) == 0
        event = await db_admin.fetchrow(
            "SELECT details FROM audit_log WHERE target_id = $1 AND action = 'admin.second_factors_removed'",
            user_id,
        )
        assert event is not None
        details = json.loads(event["details"])
        assert details["operator"] == "ops-alice"
        assert (details["totp"], details["passkeys"], details["recovery_codes"]) == (1, 1, 10)
        mails = [
            m for m in await queued_emails(auth.settings, email) if m["template"] == "second_factors_removed"
        ]
        assert len(mails) == 1

        # Nothing left to remove: nothing audited or mailed again.
        again = await admin_cli("remove-second-factors", email)
        assert again.returncode == 0
        mails = [
            m for m in await queued_emails(auth.settings, email) if m["template"] == "second_factors_removed"
        ]
        assert len(mails) == 1


async def test_unknown_user_is_refused(admin_cli: AdminCli) -> None:
    result = await admin_cli("remove-second-factors", "nobody-here@example.com")
    assert result.returncode == 1
    assert "no user" in result.stderr


async def test_removal_revokes_every_session_of_the_user(
    admin_cli: AdminCli, start_auth: Callable[..., Any]
) -> None:
    async with start_auth() as auth, auth.client() as client:
        email, verified = await signup(client, auth.settings)
        secret, _ = await enrol_totp(client, verified.json()["access_token"])
        elsewhere = await second_factor(
            client, challenge_of(await login(client, email))["challenge"], totp_code=code_at(secret, 1)
        )
        assert elsewhere.status_code == 200

        result = await admin_cli("remove-second-factors", email)
        assert result.returncode == 0, result.stderr
        for signed_in in (verified, elsewhere):
            assert (await do_refresh(client, refresh_cookie(signed_in))).status_code == 401
