"""Cursor pagination (users, invitations): every item once, newest first; bad cursors and limits are 422s."""

from __future__ import annotations

import uuid

from services.api.pagination import encode_cursor
from tests.api.helpers import add_member, walk


async def test_users_pagination_walks_all_without_duplicates(client, minter, make_org, admin):
    org = await make_org("owner")
    for _ in range(11):
        await add_member(admin, org, "member")
    headers = minter.headers(org.owner)
    items, pages = await walk(client, "/api/v1/users", headers, 5)
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == 12 and pages == 3
    assert set(ids) == {str(m.id) for m in org.members}
    assert ids[0] == str(org.owner.id)  # oldest first
    default = (await client.get("/api/v1/users", headers=headers)).json()
    assert len(default["items"]) == 12 and default["next_cursor"] is None


async def test_invitations_pagination_newest_first(client, minter, make_org):
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    created = []
    for _ in range(7):
        email = f"p-{uuid.uuid4().hex[:8]}@example.com"
        response = await client.post("/api/v1/invitations", json={"email": email}, headers=headers)
        created.append(response.json()["id"])
    items, _ = await walk(client, "/api/v1/invitations", headers, 3)
    assert [i["id"] for i in items] == list(reversed(created))


async def test_invalid_cursor_and_limit_are_422_problems(client, minter, make_org):
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    for path in ("/api/v1/users", "/api/v1/invitations", "/api/v1/audit-log"):
        for params in (
            {"cursor": "garbage!"},
            {"cursor": "W10"},
            {"cursor": "WyJ4Il0"},
            {"limit": 0},
            {"limit": 101},
            {"limit": "x"},
        ):
            response = await client.get(path, params=params, headers=headers)
            assert response.status_code == 422, (path, params, response.text)
            assert response.headers["content-type"] == "application/problem+json"


async def test_cursor_with_out_of_range_timestamp_is_a_422_problem(client, minter, make_org):
    """A well-formed cursor whose timestamp overflows once converted to UTC is the client's error."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    for path in ("/api/v1/users", "/api/v1/invitations"):
        for stamp in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
            cursor = encode_cursor(stamp, uuid.uuid4())
            response = await client.get(path, params={"cursor": cursor}, headers=headers)
            assert response.status_code == 422, (path, stamp, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
