"""Part 2: the public contract end to end through Traefik on the compose stack.

register -> verification email (outbox, `docker compose exec worker`) -> verify -> /me ->
refresh (rotation, reuse detection) -> logout; invitations; magic link; operational endpoints
unreachable. Finding 7 (gateway errors are problems: unknown path 404, body limit 413) and
issue 12's body limit at Traefik are checked here; an unreachable backend is in part 5.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.compose.accounts import refresh_cookie, register
from tests.compose.stack import ComposeStack
from tests.compose.timings import part_timer
from tests.e2e.helpers import (
    OPERATIONAL_PATHS,
    PASSWORD,
    PROBLEM,
    REFRESH_COOKIE,
    Account,
    account_from,
    assert_problem,
    get_raw,
    link_token,
)

pytestmark = [pytest.mark.compose, pytest.mark.slow]
_part = part_timer("part 2: e2e through Traefik")


@pytest.fixture(scope="module")
def alice(client: httpx.Client, stack: ComposeStack) -> Account:
    return register(client, stack, "alice")


def test_register_verify_me_refresh_logout(client: httpx.Client, stack: ComposeStack, alice: Account) -> None:
    me = client.get("/api/v1/me", headers=alice.auth)
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == alice.email
    login = client.post("/api/v1/auth/login", json={"email": alice.email, "password": PASSWORD})
    cookie = refresh_cookie(login)
    assert cookie[REFRESH_COOKIE]["httponly"] and cookie[REFRESH_COOKIE]["samesite"].lower() == "strict"
    assert not cookie[REFRESH_COOKIE]["secure"]  # plain http in the default profile; prod: part 7

    def refresh(token: str) -> httpx.Response:
        return client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={token}"})

    successor = account_from(refresh(alice.refresh), alice.email)
    assert successor.refresh != alice.refresh
    time.sleep(1.5)  # past the (test) grace window: presenting the old token again is reuse
    assert_problem(refresh(alice.refresh), 401)
    assert_problem(refresh(successor.refresh), 401)  # the whole family is revoked

    bob = register(client, stack, "bob")
    out = client.post("/api/v1/auth/logout", headers={"Cookie": f"{REFRESH_COOKIE}={bob.refresh}"})
    assert out.status_code == 204, out.text
    assert_problem(client.get("/api/v1/me", headers=bob.auth), 401)


def test_invitation_from_the_outbox(client: httpx.Client, stack: ComposeStack) -> None:
    owner = register(client, stack, "owner")
    invitee = f"invitee-{owner.user_id[:8]}@example.org"
    invited = client.post(
        "/api/v1/invitations", headers=owner.auth, json={"email": invitee, "role": "member"}
    )
    assert invited.status_code == 201, invited.text
    token = link_token(stack.wait_for_email(invitee, "/auth/accept-invitation"), "/auth/accept-invitation")
    accepted = client.post(
        "/api/v1/auth/invitations/accept", json={"token": token, "name": "Invitee", "password": PASSWORD}
    )
    member = account_from(accepted, invitee, status=201)
    assert member.org_id == owner.org_id
    me = client.get("/api/v1/me", headers=member.auth).json()
    assert me["user"]["role"] == "member" and str(me["org"]["id"]) == owner.org_id


def test_magic_link_from_the_outbox(client: httpx.Client, stack: ComposeStack, alice: Account) -> None:
    requested = client.post("/api/v1/auth/magic-link", json={"email": alice.email})
    assert requested.status_code == 202, requested.text
    token = link_token(stack.wait_for_email(alice.email, "/auth/magic#token="), "/auth/magic")
    used = client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert str(account_from(used, alice.email).user_id) == alice.user_id
    again = client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert again.status_code in (400, 401, 404, 410)


# A path outside every prefix too: the gateway's own 404, a problem as well (finding 7).
@pytest.mark.parametrize("path", [*OPERATIONAL_PATHS, "/somewhere-else"])
def test_operational_and_unknown_paths_are_404_problems(stack: ComposeStack, path: str) -> None:
    """Finding 7: the gateway's 404 for what no route serves is a problem+json, and never the
    services' metrics."""
    response = get_raw(stack.url, path)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"# TYPE" not in response.content and b"_total" not in response.content
    if response.status_code == 404:
        assert response.headers["content-type"].startswith(PROBLEM), (path, response.headers)


def test_gateway_refuses_oversized_bodies(client: httpx.Client) -> None:
    """Issue 12's defence in depth: Traefik itself refuses a body over 64 KiB with a 413 problem."""
    body = b'{"email": "' + b"a" * 70_000 + b'@example.org", "password": "x"}'
    response = client.post("/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"})
    body_json = assert_problem(response, 413)
    assert "64 KiB" in body_json["detail"]


def test_account_pages_through_traefik(client: httpx.Client, stack: ComposeStack) -> None:
    """The emailed links open the account pages (served by auth, routed by Traefik), with the
    pages' own CSP; the JSON routes keep theirs (tests/e2e/pages drives them in Chromium)."""
    alice = register(client, stack, "pages")
    mailed = stack.wait_for_email(alice.email, "/auth/verify-email")["text"]
    link = re.search(r"https?://[^\s]+/auth/verify-email#token=", mailed)
    assert link, mailed
    for path in (
        urlsplit(link.group(0)).path,
        "/auth/sign-up",
        "/auth/sign-in",
        "/auth/forgot-password",
        "/auth/magic",
        "/auth/reset-password",
        "/auth/accept-invitation",
        "/account",
        "/org",
    ):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:200])
        assert page.headers["content-type"].startswith("text/html"), path
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, policy
        assert "unsafe" not in policy
        assert page.headers["referrer-policy"] == "no-referrer"
    script = client.get("/pages/js/api.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    jwks = client.get("/api/v1/auth/.well-known/jwks.json")
    assert jwks.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert_problem(client.get("/pages/nope.js"), 404)
