"""GET /org and PATCH /org: read by every member, renamed by managers only, audited."""

from __future__ import annotations

from tests.api.helpers import audit_rows


async def test_get_org(client, minter, make_org):
    org = await make_org("owner", "member")
    response = await client.get("/api/v1/org", headers=minter.headers(org.by_role("member")))
    assert response.status_code == 200
    assert response.json()["name"] == org.name


async def test_patch_org_by_admin_is_audited(client, minter, make_org, admin):
    org = await make_org("owner", "admin")
    actor = org.by_role("admin")
    response = await client.patch("/api/v1/org", json={"name": "  Renamed  "}, headers=minter.headers(actor))
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert await admin.fetchval("SELECT name FROM organizations WHERE id = $1", org.id) == "Renamed"
    (event,) = await audit_rows(admin, org)
    assert event["action"] == "org.updated"
    assert event["actor_user_id"] == actor.id
    assert event["target_type"] == "organization" and event["target_id"] == str(org.id)
    assert event["request_id"] == response.headers["x-request-id"]
    assert str(event["ip_address"]) == "203.0.113.7"


async def test_member_cannot_patch_org(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    response = await client.patch(
        "/api/v1/org", json={"name": "Mine now"}, headers=minter.headers(org.by_role("member"))
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert await admin.fetchval("SELECT name FROM organizations WHERE id = $1", org.id) == org.name
    assert await audit_rows(admin, org) == []


async def test_invalid_bodies_are_422_problems(client, minter, make_org):
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    for body in ({"name": ""}, {"name": "x" * 201}, {"nom": "x"}, {}):
        response = await client.patch("/api/v1/org", json=body, headers=headers)
        assert response.status_code == 422, body
        problem = response.json()
        assert problem["type"].endswith("/validation-error") and problem["errors"]
