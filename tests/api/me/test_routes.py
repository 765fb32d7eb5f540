"""GET /me: the caller and their org."""

from __future__ import annotations


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
