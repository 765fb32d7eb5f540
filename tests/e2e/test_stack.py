"""End to end, through Traefik only: the public contract of DESIGN.md on the local stack.

Every request goes to the gateway URL (`stack.url`), except the /metrics checks, which prove
the metrics are on each service's own port and not behind the gateway.
"""

from __future__ import annotations

import time

import httpx
import pytest

from devstack.run import LocalStack
from tests.e2e.helpers import (
    OPERATIONAL_PATHS,
    PROBLEM,
    REFRESH_COOKIE,
    Account,
    assert_problem,
    get_raw,
    link_token,
    mailbox,
    refresh_cookie,
    register,
    wait_for_email,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# --- the gateway itself -------------------------------------------------------------------


def test_traefik_answers_and_routes_by_prefix(client: httpx.Client) -> None:
    # An unknown path under each prefix is answered by the service (problem+json), so it was
    # routed; a path outside both prefixes is Traefik's own plain 404.
    for path in ("/api/v1/auth/no-such-thing", "/api/v1/no-such-thing"):
        assert_problem(client.get(path), 404)
    outside = client.get("/somewhere-else")
    assert outside.status_code == 404
    assert not outside.headers.get("content-type", "").startswith(PROBLEM)


def test_jwks_through_the_gateway(client: httpx.Client) -> None:
    response = client.get("/api/v1/auth/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys and all("d" not in key for key in keys)  # public halves only


@pytest.mark.parametrize("path", OPERATIONAL_PATHS)
def test_operational_endpoints_are_not_reachable_through_traefik(stack: LocalStack, path: str) -> None:
    response = get_raw(stack.url, path)
    assert response.status_code in (400, 404), (path, response.status_code)
    assert b"# TYPE" not in response.content and b"_total" not in response.content


def test_metrics_are_on_each_services_own_port(stack: LocalStack) -> None:
    ports = {"auth": stack.ports.auth, "api": stack.ports.api, "worker": stack.ports.worker_metrics}
    for name, port in ports.items():
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10.0)
        assert response.status_code == 200, name
        assert "# TYPE" in response.text, name


def test_health_and_readiness_of_every_part(stack: LocalStack) -> None:
    assert httpx.get(f"http://127.0.0.1:{stack.ports.ping}/ping").text == "OK"
    for port in (stack.ports.auth, stack.ports.api):
        assert httpx.get(f"http://127.0.0.1:{port}/ready").json()["status"] == "ready"


def test_client_cannot_spoof_its_address(client: httpx.Client) -> None:
    # Traefik does not trust the client's X-Forwarded-For on the public entry point; the
    # request still works and is not attributed to the spoofed address (no crash, no bypass).
    response = client.post(
        "/api/v1/auth/magic-link",
        json={"email": "nobody@example.org"},
        headers={"X-Forwarded-For": "203.0.113.9", "X_Forwarded_For": "1.2.3.4"},
    )
    assert response.status_code == 202


# --- the contract, through the gateway ------------------------------------------------------


def test_me_for_two_orgs(client: httpx.Client, alice: Account, bob: Account) -> None:
    assert alice.org_id != bob.org_id
    for account in (alice, bob):
        response = client.get("/api/v1/me", headers=account.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert str(body["user"]["id"]) == account.user_id
        assert str(body["org"]["id"]) == account.org_id
        assert body["user"]["email"] == account.email


def test_cross_tenant_access_is_404(client: httpx.Client, alice: Account, bob: Account) -> None:
    own = client.get(f"/api/v1/users/{alice.user_id}", headers=alice.auth)
    assert own.status_code == 200, own.text
    assert_problem(client.get(f"/api/v1/users/{bob.user_id}", headers=alice.auth), 404)
    assert_problem(
        client.patch(f"/api/v1/users/{bob.user_id}", headers=alice.auth, json={"name": "pwned"}), 404
    )
    assert_problem(client.delete(f"/api/v1/users/{bob.user_id}", headers=alice.auth), 404)
    listed = client.get("/api/v1/users", headers=alice.auth).json()
    ids = {str(user["id"]) for user in listed.get("items", listed.get("data", []))}
    assert alice.user_id in ids and bob.user_id not in ids


def test_rate_limit_headers(client: httpx.Client, alice: Account) -> None:
    response = client.get("/api/v1/me", headers=alice.auth)
    for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert header in response.headers, response.headers
    assert int(response.headers["RateLimit-Remaining"]) < int(response.headers["RateLimit-Limit"])
    login = client.post("/api/v1/auth/login", json={"email": alice.email, "password": "wrong password!"})
    assert_problem(login, 401)
    assert "RateLimit-Limit" in login.headers


def test_problem_json_on_errors(client: httpx.Client, alice: Account) -> None:
    assert_problem(client.get("/api/v1/me"), 401)
    assert_problem(client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-jwt"}), 401)
    invalid = assert_problem(client.post("/api/v1/auth/login", json={"email": "x"}), 422)
    assert invalid.get("errors")
    assert_problem(client.put("/api/v1/auth/login", json={}), 405)


def test_refresh_rotates_and_reuse_revokes(client: httpx.Client, stack: LocalStack) -> None:
    account = register(client, mailbox(stack), "carol")
    first = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert first.status_code == 200, first.text
    rotated = refresh_cookie(first)
    assert rotated and rotated != account.refresh
    new_access = first.json()["access_token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {new_access}"}).status_code == 200

    time.sleep(1.5)  # past the (test) grace window of 1 s: presenting the old token is reuse
    reused = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert_problem(reused, 401)
    # the whole family is revoked: the successor no longer works either
    after = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={rotated}"})
    assert_problem(after, 401)


def test_logout_rejects_the_access_token(client: httpx.Client, stack: LocalStack) -> None:
    account = register(client, mailbox(stack), "dave")
    assert client.get("/api/v1/me", headers=account.auth).status_code == 200
    out = client.post("/api/v1/auth/logout", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert out.status_code == 204, out.text
    assert_problem(client.get("/api/v1/me", headers=account.auth), 401)
    again = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert_problem(again, 401)


def test_magic_link_from_the_outbox(client: httpx.Client, stack: LocalStack, alice: Account) -> None:
    requested = client.post("/api/v1/auth/magic-link", json={"email": alice.email})
    assert requested.status_code == 202
    unknown = client.post("/api/v1/auth/magic-link", json={"email": "nobody-at-all@example.org"})
    assert unknown.status_code == 202 and unknown.json() == requested.json()
    message = wait_for_email(stack.outbox, alice.email, subject_hint="")
    deadline = time.monotonic() + 20
    while "/auth/magic#token=" not in message["text"] and time.monotonic() < deadline:
        time.sleep(0.2)
        message = wait_for_email(stack.outbox, alice.email)
    assert message["html"]
    token = link_token(message, "/auth/magic")
    assert message["text"].count(stack.url.replace("127.0.0.1", "localhost")) >= 1
    used = client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert used.status_code == 200, used.text
    assert str(used.json()["user"]["id"]) == alice.user_id
    assert refresh_cookie(used)
    access = used.json()["access_token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    second = client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert second.status_code in (400, 401, 404, 410), second.text
    assert second.headers["content-type"].startswith(PROBLEM)
