"""API keys end to end, through Traefik only: a bot's life with its key."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.run import LocalStack
from tests.e2e.helpers import Account, assert_problem, mailbox, register

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEYS = "/api/v1/api-keys"


def create_key(client: httpx.Client, owner: Account, *scopes: str, **body: Any) -> dict[str, Any]:
    response = client.post(KEYS, json={"name": "e2e bot", "scopes": list(scopes), **body}, headers=owner.auth)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created: dict[str, Any] = response.json()
    assert created["key"].startswith(created["prefix"] + "_")
    return created


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def test_a_key_reads_as_its_org_and_shows_who_is_calling(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    key = create_key(client, alice, "read")
    me = client.get("/api/v1/me", headers=bearer(key))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["credential"] == "api_key"
    assert body["key"] == {"id": key["id"], "name": "e2e bot", "scopes": ["read"]}
    assert body["org"]["id"] == alice.org_id
    assert "RateLimit-Remaining" in me.headers
    users = client.get("/api/v1/users", headers=bearer(key)).json()["items"]
    assert alice.user_id in {u["id"] for u in users}
    assert client.get("/api/v1/org", headers=bearer(key)).json()["id"] == alice.org_id
    # Another org's data is unreachable: a 404, not a 403.
    assert_problem(client.get(f"/api/v1/users/{bob.user_id}", headers=bearer(key)), 404)
    listed = client.get(KEYS, headers=alice.auth).json()["items"]
    mine = next(item for item in listed if item["id"] == key["id"])
    assert mine["last_used_at"] is not None and "key" not in mine
    assert key["id"] not in str(client.get(KEYS, headers=bob.auth).json())
    assert_problem(client.delete(f"{KEYS}/{key['id']}", headers=bob.auth), 404)


def test_scopes_on_writes_and_what_keys_can_never_do(client: httpx.Client, alice: Account) -> None:
    read, write = create_key(client, alice, "read"), create_key(client, alice, "write")
    rename = {"name": "renamed by a bot"}
    refused = assert_problem(
        client.patch(f"/api/v1/users/{alice.user_id}", json=rename, headers=bearer(read)), 403
    )
    assert refused["type"].endswith("/insufficient-scope")
    # A write key passes the scope check on a write and meets the rules of that write: keys
    # never manage members, keys, invitations or the organization.
    for method, path, body in [
        ("PATCH", f"/api/v1/users/{alice.user_id}", rename),
        ("PATCH", "/api/v1/org", {"name": "bot org"}),
        ("POST", "/api/v1/invitations", {"email": "friend@example.org", "role": "member"}),
        ("POST", KEYS, {"name": "child", "scopes": ["read"]}),
        ("GET", KEYS, None),
        ("DELETE", f"{KEYS}/{read['id']}", None),
    ]:
        problem = assert_problem(client.request(method, path, json=body, headers=bearer(write)), 403)
        assert problem["type"].endswith("/api-key-not-allowed"), (method, path, problem)
    assert client.get("/api/v1/me", headers=bearer(read)).status_code == 200  # nothing was revoked
    me = client.get("/api/v1/me", headers=alice.auth).json()
    assert me["credential"] == "user" and me["user"]["name"] != rename["name"]


def test_auth_endpoints_refuse_keys(client: httpx.Client, alice: Account) -> None:
    key = create_key(client, alice, "read", "write")
    for response in (
        client.get("/api/v1/auth/sessions", headers=bearer(key)),
        client.post("/api/v1/auth/logout-all", headers=bearer(key)),
    ):
        assert "API keys are not accepted" in assert_problem(response, 401)["detail"]
    assert client.get("/api/v1/auth/sessions", headers=alice.auth).status_code == 200


def test_a_revoked_key_is_refused_at_once(client: httpx.Client, alice: Account) -> None:
    key = create_key(client, alice, "read")
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    assert client.delete(f"{KEYS}/{key['id']}", headers=alice.auth).status_code == 204
    refused = assert_problem(client.get("/api/v1/me", headers=bearer(key)), 401)
    assert refused["detail"] == "The API key is invalid, expired or revoked."
    listed = client.get(KEYS, headers=alice.auth).json()["items"]
    assert next(item for item in listed if item["id"] == key["id"])["revoked"] is True


def test_an_expired_key_is_refused(client: httpx.Client, alice: Account) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    key = create_key(client, alice, "read", expires_at=expires.isoformat())
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    assert_problem(client.get("/api/v1/me", headers=bearer(key)), 401)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = client.post(
        KEYS, json={"name": "late", "scopes": ["read"], "expires_at": past}, headers=alice.auth
    )
    assert_problem(response, 422)


def test_the_per_key_endpoint_window(client: httpx.Client, stack: LocalStack) -> None:
    owner = register(client, mailbox(stack), "ratebot")
    key, other = create_key(client, owner, "read"), create_key(client, owner, "read")
    statuses = [client.get("/api/v1/org", headers=bearer(key)).status_code for _ in range(101)]
    assert statuses == [200] * 100 + [429]  # the default: 100 per key per endpoint per minute
    limited = assert_problem(client.get("/api/v1/org", headers=bearer(key)), 429)
    assert "api_key_endpoint" in limited["detail"]
    # The key's other endpoints, the org's other key and its people are not limited by it.
    assert client.get("/api/v1/me", headers=bearer(key)).status_code == 200
    assert client.get("/api/v1/org", headers=bearer(other)).status_code == 200
    assert client.get("/api/v1/org", headers=owner.auth).status_code == 200
