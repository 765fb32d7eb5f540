"""Second factors end to end through Traefik: TOTP enrolment, a sign-in that needs the code,
the org policy refusing a member's single-factor token at the api, step-up's reauthentication."""

from __future__ import annotations

import time

import httpx
import pyotp
import pytest

from devstack.run import LocalStack
from tests.e2e.helpers import (
    PASSWORD,
    Account,
    account_from,
    assert_problem,
    link_token,
    mailbox,
    register,
    wait_for_email,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


AUTH = "/api/v1/auth"


def _code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * steps)


def _refreshed(client: httpx.Client, account: Account) -> Account:
    response = client.post(f"{AUTH}/refresh", headers={"Cookie": f"bb_refresh={account.refresh}"})
    return account_from(response, account.email)


def test_totp_sign_in_org_policy_and_step_up_through_the_gateway(
    client: httpx.Client, stack: LocalStack
) -> None:
    owner = register(client, mailbox(stack), "mfa-owner")
    started = client.post(f"{AUTH}/factors/totp", headers=owner.auth)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    enabled = client.post(f"{AUTH}/factors/totp/enable", json={"code": _code(secret)}, headers=owner.auth)
    assert enabled.status_code == 200 and len(enabled.json()["recovery_codes"]) == 10
    owner = _refreshed(client, owner)  # the enrolling session is aal2 now

    # The password alone: a challenge, no cookie; the next code finishes it.
    first = client.post(f"{AUTH}/login", json={"email": owner.email, "password": PASSWORD})
    body = assert_problem(first, 401)
    assert body["second_factor_required"] is True and "set-cookie" not in first.headers
    done = client.post(
        f"{AUTH}/second-factor", json={"challenge": body["challenge"], "totp_code": _code(secret, 1)}
    )
    signed_in = account_from(done, owner.email)
    assert client.get("/api/v1/me", headers=signed_in.auth).status_code == 200

    # The owner requires a second factor; an invited member signs up with a password only.
    policy = client.put("/api/v1/org/second-factor-policy", json={"required": True}, headers=owner.auth)
    assert policy.status_code == 200, policy.text
    member_email = f"mfa-member-{int(time.time() * 1000)}@example.org"
    invited = client.post(
        "/api/v1/invitations", json={"email": member_email, "role": "member"}, headers=owner.auth
    )
    assert invited.status_code == 201, invited.text
    token = link_token(wait_for_email(stack.outbox, member_email), "/auth/accept-invitation")
    accepted = client.post(
        f"{AUTH}/invitations/accept", json={"token": token, "name": "Member", "password": PASSWORD}
    )
    member = account_from(accepted, member_email, status=201)
    assert accepted.json()["second_factor_enrolment_required"] is True
    refused = assert_problem(client.get("/api/v1/me", headers=member.auth), 401)
    assert refused["type"].endswith("/second-factor-required")

    # Step-up: a fresh sign-in may create an API key; reauthentication is routed too.
    key = client.post("/api/v1/api-keys", json={"name": "bot", "scopes": ["read"]}, headers=signed_in.auth)
    assert key.status_code == 201, key.text
    # With a second factor enrolled the password alone does not step up; a recovery code does.
    password_only = client.post(f"{AUTH}/reauthenticate", json={"password": PASSWORD}, headers=signed_in.auth)
    assert assert_problem(password_only, 401)["type"].endswith("/reauthentication-needs-second-factor")
    recovery_code = enabled.json()["recovery_codes"][0]
    again = client.post(
        f"{AUTH}/reauthenticate", json={"recovery_code": recovery_code}, headers=signed_in.auth
    )
    assert again.status_code == 200, again.text
