"""API keys on the request path: the key's org as tenant, scopes, refusals by reason, limits."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.api.app import create_api_app
from shared.settings import Environment, SettingsError
from tests.api.helpers import round_trips, running

KEYS = "/api/v1/api-keys"
PROBLEM = "application/problem+json"


def key_failures(reason: str) -> float:
    return REGISTRY.get_sample_value("api_key_auth_failures_total", {"reason": reason}) or 0.0


def credential_requests(kind: str) -> float:
    return REGISTRY.get_sample_value("api_authenticated_requests_total", {"credential": kind}) or 0.0


async def new_key(api: Any, minter: Any, member: Any, *scopes: str, **body: Any) -> dict[str, Any]:
    response = await api.client.post(
        KEYS,
        json={"name": "bot", "scopes": list(scopes or ["read"]), **body},
        headers=minter.headers(member),
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(key: dict[str, Any] | str) -> dict[str, str]:
    token = key if isinstance(key, str) else key["key"]
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith(f"/{slug}"), response.json()


async def test_me_with_a_key_names_the_key_and_its_org(api, minter, make_org, admin) -> None:
    org = await make_org("owner", "member")
    key = await new_key(api, minter, org.owner, "read")
    before = credential_requests("api_key")
    response = await api.client.get("/api/v1/me", headers=bearer(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["credential"] == "api_key" and "user" not in body
    assert body["key"] == {"id": key["id"], "name": "bot", "scopes": ["read"]}
    assert body["org"]["id"] == str(org.id) and body["org"]["name"] == org.name
    assert credential_requests("api_key") == before + 1
    with_token = (await api.client.get("/api/v1/me", headers=minter.headers(org.owner))).json()
    assert with_token["credential"] == "user" and with_token["user"]["id"] == str(org.owner.id)
    # Member reads work with the key: the org's members, one member, the org.
    users = (await api.client.get("/api/v1/users", headers=bearer(key))).json()["items"]
    assert {u["id"] for u in users} == {str(m.id) for m in org.members}
    one = await api.client.get(f"/api/v1/users/{org.members[1].id}", headers=bearer(key))
    assert one.status_code == 200
    assert (await api.client.get("/api/v1/org", headers=bearer(key))).json()["id"] == str(org.id)
    last_used = await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key["id"])
    assert last_used is not None


async def test_another_orgs_data_is_404_with_a_key(api, minter, make_org) -> None:
    org, other = await make_org("owner"), await make_org("owner", "member")
    key = await new_key(api, minter, org.owner, "read", "write")
    response = await api.client.get(f"/api/v1/users/{other.owner.id}", headers=bearer(key))
    assert_problem(response, 404, "not-found")
    listed = (await api.client.get("/api/v1/users", headers=bearer(key))).json()["items"]
    assert str(other.owner.id) not in {u["id"] for u in listed}


async def test_scopes_read_is_refused_on_writes_and_write_still_cannot_manage(api, minter, make_org) -> None:
    org = await make_org("owner", "member")
    member = org.by_role("member")
    read, write = (
        await new_key(api, minter, org.owner, "read"),
        await new_key(api, minter, org.owner, "write"),
    )
    patch = {"name": "renamed by a bot"}
    before = key_failures("scope")
    assert_problem(
        await api.client.patch(f"/api/v1/users/{member.id}", json=patch, headers=bearer(read)),
        403,
        "insufficient-scope",
    )
    assert key_failures("scope") == before + 1
    # A write key passes the scope check, then meets the rule that keys manage nothing.
    assert_problem(
        await api.client.patch(f"/api/v1/users/{member.id}", json=patch, headers=bearer(write)),
        403,
        "api-key-not-allowed",
    )
    assert (await api.client.get("/api/v1/me", headers=bearer(write))).status_code == 200  # write reads
    refused: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", KEYS, {"name": "x", "scopes": ["read"]}),
        ("GET", KEYS, None),
        ("DELETE", f"{KEYS}/{read['id']}", None),
        ("PATCH", "/api/v1/org", {"name": "x"}),
        ("POST", "/api/v1/invitations", {"email": "x@example.com"}),
        ("GET", "/api/v1/invitations", None),
        ("DELETE", f"/api/v1/users/{member.id}", None),
        ("GET", "/api/v1/audit-log", None),
    ]
    for method, path, body in refused:
        response = await api.client.request(method, path, json=body, headers=bearer(write))
        assert_problem(response, 403, "api-key-not-allowed")
    # Nothing changed: the read key still works, nobody was renamed or removed.
    assert (await api.client.get("/api/v1/me", headers=bearer(read))).status_code == 200
    user = (await api.client.get(f"/api/v1/users/{member.id}", headers=bearer(read))).json()
    assert user["name"] == member.name


@pytest.mark.parametrize("reason", ["revoked", "expired", "bad_secret", "unknown", "malformed", "wrong_env"])
async def test_bad_keys_get_one_401_counted_by_reason(api, minter, make_org, admin, reason) -> None:
    org = await make_org("owner")
    key = await new_key(api, minter, org.owner, "read")
    token: str = key["key"]
    assert (await api.client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    if reason == "revoked":
        revoked = await api.client.delete(f"{KEYS}/{key['id']}", headers=minter.headers(org.owner))
        assert revoked.status_code == 204
    elif reason == "expired":
        await admin.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key["id"]
        )
    elif reason == "bad_secret":
        token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    elif reason == "unknown":
        token = f"{key['prefix'][:-16]}{'0' * 16}{token[len(key['prefix']) :]}"
    elif reason == "malformed":
        token = token[:-1]
    else:
        token = token.replace("bb_test_", "bb_live_", 1)
    # A wrong secret reads as an unknown key in the database (finding 8a of the second review).
    counted = "unknown" if reason == "bad_secret" else reason
    before = key_failures(counted)
    response = await api.client.get("/api/v1/me", headers=bearer(token))
    assert_problem(response, 401, "unauthorized")
    assert response.json()["detail"] == "The API key is invalid, expired or revoked."
    assert response.headers["www-authenticate"] == "Bearer"
    assert key_failures(counted) == before + 1


async def test_a_key_reads_its_org_and_last_used_is_written_at_most_once_a_minute(
    api, minter, make_org, admin
) -> None:
    """(The statements of a request with a key are listed by bench/auth_paths.py.)"""
    org = await make_org("owner")
    key = await new_key(api, minter, org.owner, "read")
    assert await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key["id"]) is None
    assert (await api.client.get("/api/v1/users", headers=bearer(key))).status_code == 200
    me = await api.client.get("/api/v1/me", headers=bearer(key))
    assert me.status_code == 200 and me.json()["org"]["name"] == org.name
    first = await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key["id"])
    assert first is not None
    for _ in range(3):
        assert (await api.client.get("/api/v1/me", headers=bearer(key))).status_code == 200
    assert await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key["id"]) == first
    # A minute later the next use is written again.
    await admin.execute(
        "UPDATE api_keys SET last_used_at = last_used_at - interval '61 seconds' WHERE id = $1", key["id"]
    )
    aged = await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key["id"])
    assert (await api.client.get("/api/v1/me", headers=bearer(key))).status_code == 200
    assert await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key["id"]) > aged


async def test_each_key_has_its_own_window(api_settings, minter, make_org) -> None:
    org = await make_org("owner")
    async with running(api_settings(ratelimit_user_endpoint_per_minute=3)) as api:
        key, other = (
            await new_key(api, minter, org.owner, "read"),
            await new_key(api, minter, org.owner, "read"),
        )
        statuses = [(await api.client.get("/api/v1/me", headers=bearer(key))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await api.client.get("/api/v1/me", headers=bearer(key))
        assert_problem(limited, 429, "rate-limited")
        assert "api_key_endpoint" in limited.json()["detail"] and limited.headers["retry-after"]
        # Another key, and the people of the org, keep their own windows.
        assert (await api.client.get("/api/v1/me", headers=bearer(other))).status_code == 200
        assert (await api.client.get("/api/v1/me", headers=minter.headers(org.owner))).status_code == 200
        assert (await api.client.get("/api/v1/users", headers=bearer(key))).status_code == 200


def test_production_api_refuses_to_start_without_a_hash_secret(make_settings) -> None:
    settings = make_settings("api")
    production = settings.model_copy(update={"env": Environment.PRODUCTION})
    with pytest.raises(SettingsError, match="API_KEY_HASH_SECRET"):
        create_api_app(production)


async def test_the_per_key_window_counts_every_endpoint(api_settings, minter, make_org) -> None:
    org = await make_org("owner")
    async with running(api_settings(ratelimit_user_per_hour=3)) as api:
        key = await new_key(api, minter, org.owner, "read")
        paths = ["/api/v1/me", "/api/v1/org", "/api/v1/users"]
        assert [(await api.client.get(p, headers=bearer(key))).status_code for p in paths] == [200] * 3
        limited = await api.client.get("/api/v1/users/" + str(org.owner.id), headers=bearer(key))
        assert_problem(limited, 429, "rate-limited")
        assert "(api_key)" in limited.json()["detail"]


def test_only_the_intended_routes_accept_keys(api_settings) -> None:
    """Keys are admitted route by route (`Caller`); anything else refuses them."""
    from fastapi.routing import APIRoute

    from services.api.deps import caller

    def depends_on(dependant: Any, call: Any) -> bool:
        return any(d.call is call or depends_on(d, call) for d in dependant.dependencies)

    def api_routes(routes: Any) -> Any:
        # FastAPI includes routers lazily: the app holds them wrapped, with the original inside.
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from api_routes(route.original_router.routes)

    app = create_api_app(api_settings())
    every = list(api_routes(app.routes))
    assert len(every) > 10
    admitted = {
        (method, route.path)
        for route in every
        if depends_on(route.dependant, caller)
        for method in route.methods or ()
    }
    assert admitted == {
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/org"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/users/{user_id}"),
    }


def client_from(api: Any, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_failed_key_lookups_are_limited_per_network_before_the_database(
    api_settings, minter, make_org
) -> None:
    """Second security review, finding 6, tried as an attacker would: 2,000 random keys were
    2,000 database lookups and never a 429."""
    org = await make_org("owner")
    async with running(api_settings(ratelimit_api_key_failures_per_minute=5)) as api:
        key = await new_key(api, minter, org.owner, "read")
        good = key["key"]
        prefix = "bb_test_"
        async with client_from(api, "203.0.113.66") as guesser, client_from(api, "198.51.100.66") as bot:
            assert (await bot.get("/api/v1/me", headers=bearer(good))).status_code == 200
            statuses = []
            for _ in range(8):
                guess = f"{prefix}{secrets.token_hex(8)}_{good[-43:]}"
                statuses.append((await guesser.get("/api/v1/me", headers=bearer(guess))).status_code)
            assert statuses == [401] * 5 + [429] * 3
            # Refused before the database: no lookup statement at all.
            with round_trips(prepares=False) as statements:
                limited = await guesser.get("/api/v1/me", headers=bearer(f"{prefix}{'1' * 16}_{good[-43:]}"))
            assert_problem(limited, 429, "rate-limited")
            assert int(limited.headers["retry-after"]) >= 1
            assert statements == []
            # The whole network's key requests wait (a valid key too); person tokens are not keys.
            assert (await guesser.get("/api/v1/me", headers=bearer(good))).status_code == 429
            assert (await guesser.get("/api/v1/me", headers=minter.headers(org.owner))).status_code == 200
            # Another network is not affected.
            assert (await bot.get("/api/v1/me", headers=bearer(good))).status_code == 200
