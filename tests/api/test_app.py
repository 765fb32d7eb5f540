"""The api application as a whole: unknown routes and methods are problems; the OpenAPI document
lists every route."""

from __future__ import annotations


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
