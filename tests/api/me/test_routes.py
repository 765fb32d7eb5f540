"""GET /me, /org, PATCH /org, and the shape of errors."""

from __future__ import annotations

from tests.api.helpers import audit_rows


async def test_me_returns_user_and_org(client, minter, make_org):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    response = await client.get("/api/v1/me", headers=minter.headers(member))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == str(member.id)
    assert body["user"]["email"] == member.email
    assert body["user"]["role"] == "member"
    assert body["user"]["email_verified"] is True
    assert body["org"] == {
        "id": str(org.id),
        "name": org.name,
        "created_at": body["org"]["created_at"],
        "updated_at": body["org"]["updated_at"],
    }
    assert response.headers["x-request-id"]


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


async def test_unknown_route_and_method_are_problems(client, minter, make_org):
    org = await make_org("owner")
    response = await client.get("/api/v1/nope", headers=minter.headers(org.owner))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    response = await client.put("/api/v1/me", headers=minter.headers(org.owner))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


async def test_openapi_lists_the_routes(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/me",
        "/api/v1/org",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/invitations",
        "/api/v1/invitations/{invitation_id}",
        "/api/v1/audit-log",
    ):
        assert path in paths
