"""API key management: create (shown once, hash stored), list (paginated), revoke; owner/admin only."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime, timedelta

from shared.api_keys import hashing_key, parse_key, secret_hash
from tests.api.helpers import audit_rows

KEYS = "/api/v1/api-keys"


async def create_key(api, minter, member, **body):
    payload = {"name": "deploy bot", "scopes": ["read"], **body}
    return await api.client.post(KEYS, json=payload, headers=minter.headers(member))


async def test_create_shows_the_key_once_and_stores_only_its_keyed_hash(api, minter, make_org, admin):
    org = await make_org("owner", "admin")
    actor = org.by_role("admin")
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    response = await create_key(
        api, minter, actor, name="  ci bot ", scopes=["write", "read", "read"], expires_at=expires.isoformat()
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    parsed = parse_key(body["key"])
    assert parsed is not None and parsed.env == "test"
    assert body["prefix"] == f"bb_test_{parsed.public_id}" and body["key"].startswith(body["prefix"] + "_")
    assert body["name"] == "ci bot" and body["scopes"] == ["read", "write"]
    assert body["created_by"] == str(actor.id) and body["last_used_at"] is None
    assert datetime.fromisoformat(body["expires_at"]) == expires
    assert body["revoked"] is False and body["expired"] is False

    row = await admin.fetchrow("SELECT * FROM api_keys WHERE id = $1", body["id"])
    assert row["org_id"] == org.id and row["public_id"] == parsed.public_id
    expected = secret_hash(hashing_key(api.settings), parsed.public_id, parsed.secret)
    assert hmac.compare_digest(bytes(row["secret_hash"]), expected)
    assert parsed.secret.encode() not in b"".join(str(value).encode() for value in dict(row).values())
    # Never shown again.
    listed = (await api.client.get(KEYS, headers=minter.headers(actor))).json()
    assert "key" not in listed["items"][0] and parsed.secret not in str(listed)

    (event,) = [e for e in await audit_rows(admin, org) if e["action"] == "api_key.created"]
    assert event["actor_user_id"] == actor.id and event["target_id"] == body["id"]
    details = json.loads(event["details"])
    assert details["name"] == "ci bot" and details["scopes"] == ["read", "write"]
    assert parsed.secret not in str(details)


async def test_only_owners_and_admins_manage_keys(api, minter, make_org) -> None:
    org = await make_org("owner", "member")
    member = org.by_role("member")
    assert (await create_key(api, minter, member)).status_code == 403
    assert (await api.client.get(KEYS, headers=minter.headers(member))).status_code == 403
    created = (await create_key(api, minter, org.owner)).json()
    refused = await api.client.delete(f"{KEYS}/{created['id']}", headers=minter.headers(member))
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_bad_input_is_a_422_and_creates_nothing(api, minter, make_org, admin) -> None:
    org = await make_org("owner")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    bodies: list[dict[str, object]] = [
        {"scopes": []},
        {"scopes": ["admin"]},
        {"name": ""},
        {"name": "a\x00b"},
        {"expires_at": past},
        {"expires_at": "2030-01-01T00:00:00"},
        {"extra": 1},
        {"name": "x" * 201},
    ]
    for body in bodies:
        response = await create_key(api, minter, org.owner, **body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await admin.fetchval("SELECT count(*) FROM api_keys WHERE org_id = $1", org.id) == 0


async def test_list_is_newest_first_and_cursor_paginated(api, minter, make_org) -> None:
    org = await make_org("owner")
    ids = [(await create_key(api, minter, org.owner, name=f"bot {n}")).json()["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get(KEYS, params=params, headers=minter.headers(org.owner))).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    bad = await api.client.get(KEYS, params={"cursor": "nope"}, headers=minter.headers(org.owner))
    assert bad.status_code == 422


async def test_revoke_is_audited_idempotent_and_another_orgs_key_is_404(api, minter, make_org, admin) -> None:
    org, other = await make_org("owner"), await make_org("owner")
    key = (await create_key(api, minter, org.owner)).json()
    # Another org's owner cannot see, revoke or tell it exists.
    outsider = minter.headers(other.owner)
    assert (await api.client.delete(f"{KEYS}/{key['id']}", headers=outsider)).status_code == 404
    assert key["id"] not in str((await api.client.get(KEYS, headers=outsider)).json())
    assert await admin.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", key["id"]) is None

    for _ in range(2):
        response = await api.client.delete(f"{KEYS}/{key['id']}", headers=minter.headers(org.owner))
        assert response.status_code == 204
    listed = (await api.client.get(KEYS, headers=minter.headers(org.owner))).json()["items"]
    assert listed[0]["revoked"] is True and listed[0]["revoked_at"]
    revoked = [e for e in await audit_rows(admin, org) if e["action"] == "api_key.revoked"]
    assert len(revoked) == 1 and revoked[0]["actor_user_id"] == org.owner.id
    missing = await api.client.delete(
        f"{KEYS}/00000000-0000-0000-0000-000000000000", headers=minter.headers(org.owner)
    )
    assert missing.status_code == 404


async def test_removing_a_keys_creator_revokes_it_audited(api, minter, make_org, admin) -> None:
    """Second security review, finding 5, tried as an attacker would: a removed admin kept a
    key that read the org (members' emails and roles) after losing every right."""
    org = await make_org("owner", "admin")
    creator = org.by_role("admin")
    key = (await create_key(api, minter, creator)).json()
    owners_key = (await create_key(api, minter, org.owner)).json()
    assert (
        await api.client.get("/api/v1/users", headers={"Authorization": f"Bearer {key['key']}"})
    ).status_code == 200
    removed = await api.client.delete(f"/api/v1/users/{creator.id}", headers=minter.headers(org.owner))
    assert removed.status_code == 204, removed.text
    refused = await api.client.get("/api/v1/users", headers={"Authorization": f"Bearer {key['key']}"})
    assert refused.status_code == 401
    row = await admin.fetchrow(
        "SELECT created_by, revoked_at, revoked_by FROM api_keys WHERE id = $1", key["id"]
    )
    assert row["created_by"] is None and row["revoked_at"] is not None and row["revoked_by"] == org.owner.id
    (event,) = [e for e in await audit_rows(admin, org) if e["action"] == "api_key.revoked"]
    assert event["actor_user_id"] == org.owner.id and event["target_id"] == key["id"]
    details = json.loads(event["details"]) if isinstance(event["details"], str) else event["details"]
    assert details["reason"] == "creator_removed" and details["creator"] == str(creator.id)
    # The creation stays in the log, and other people's keys are untouched.
    (created,) = [
        e
        for e in await audit_rows(admin, org)
        if e["action"] == "api_key.created" and e["target_id"] == key["id"]
    ]
    assert created["actor_user_id"] == creator.id
    assert await admin.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", owners_key["id"]) is None


async def test_demoting_a_keys_creator_below_admin_revokes_it(api, minter, make_org, admin) -> None:
    org = await make_org("owner", "admin", "admin")
    demoted, promoted = [m for m in org.members if m.role == "admin"]
    kept_key = (await create_key(api, minter, promoted)).json()
    lost_key = (await create_key(api, minter, demoted)).json()
    headers = minter.headers(org.owner)
    # admin -> owner keeps the right to create keys: nothing is revoked.
    up = await api.client.patch(f"/api/v1/users/{promoted.id}", json={"role": "owner"}, headers=headers)
    assert up.status_code == 200, up.text
    down = await api.client.patch(f"/api/v1/users/{demoted.id}", json={"role": "member"}, headers=headers)
    assert down.status_code == 200, down.text
    assert (
        await api.client.get("/api/v1/org", headers={"Authorization": f"Bearer {lost_key['key']}"})
    ).status_code == 401
    assert (
        await api.client.get("/api/v1/org", headers={"Authorization": f"Bearer {kept_key['key']}"})
    ).status_code == 200
    revoked = [e for e in await audit_rows(admin, org) if e["action"] == "api_key.revoked"]
    assert [e["target_id"] for e in revoked] == [lost_key["id"]]
    details = (
        json.loads(revoked[0]["details"]) if isinstance(revoked[0]["details"], str) else revoked[0]["details"]
    )
    assert details["reason"] == "creator_role_changed"


BAD_KEY_NAMES = ["deploy\x1b[31m bot", "line\nbreak", "tab\tbed", "evil\u202etxt.exe", "nul\x00"]


async def test_key_names_follow_the_display_name_rule(api, minter, make_org, admin) -> None:
    """Second security review, finding 7: names took ANSI escapes, line breaks and bidi overrides."""
    org = await make_org("owner")
    for name in BAD_KEY_NAMES:
        response = await create_key(api, minter, org.owner, name=name)
        assert response.status_code == 422, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["loc"] == ["body", "name"]
    assert await admin.fetchval("SELECT count(*) FROM api_keys WHERE org_id = $1", org.id) == 0
    assert (await create_key(api, minter, org.owner, name="  déploiement bot  ")).json()[
        "name"
    ] == "déploiement bot"
