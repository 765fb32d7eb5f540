"""Cursor pagination (users, invitations, audit log) and the audit log's contents."""

from __future__ import annotations

import uuid

from services.api.pagination import encode_cursor
from tests.api.helpers import add_member


async def walk(client, path, headers, limit):
    items, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


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


async def test_audit_log_newest_first_paginated_and_complete(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    headers = minter.headers(org.owner)
    request_ids = []
    for n in range(4):
        response = await client.patch("/api/v1/org", json={"name": f"Name {n}"}, headers=headers)
        request_ids.append(response.headers["x-request-id"])
    response = await client.patch(
        f"/api/v1/users/{org.by_role('member').id}", json={"role": "admin"}, headers=headers
    )
    request_ids.append(response.headers["x-request-id"])
    items, pages = await walk(client, "/api/v1/audit-log", headers, 2)
    assert pages == 3
    assert [i["action"] for i in items] == ["user.role_changed"] + ["org.updated"] * 4
    assert [i["request_id"] for i in items] == list(reversed(request_ids))
    ids = [int(i["id"]) for i in items]
    assert ids == sorted(ids, reverse=True)
    first = items[-1]
    assert first["actor_user_id"] == str(org.owner.id)
    assert first["details"] == {"changes": {"name": {"from": org.name, "to": "Name 0"}}}
    assert first["ip_address"] == "203.0.113.7"
    # Promoted to admin: the database role counts, though the token still says "member".
    promoted = minter.headers(org.by_role("member"))
    assert (await client.get("/api/v1/audit-log", headers=promoted)).status_code == 200


async def test_members_cannot_read_the_audit_log(client, minter, make_org):
    org = await make_org("owner", "member")
    response = await client.get("/api/v1/audit-log", headers=minter.headers(org.by_role("member")))
    assert response.status_code == 403


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


async def test_audit_log_orders_and_pages_by_the_numeric_id_across_digit_boundaries(
    client, minter, make_org, admin
):
    """Ids crossing powers of ten (999,999 -> 1,000,000 and 9,999,999 -> 10,000,000) are listed
    newest first and each exactly once, on one page and walked a few at a time: text order
    would put 9999999 before 10000004 and the numeric cursor would then skip the newest."""
    org = await make_org("owner")
    ids = [*range(999_995, 1_000_005), *range(9_999_995, 10_000_005)]
    await admin.executemany(
        "INSERT INTO audit_log (id, org_id, action) OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'test.event')",
        [(i, org.id) for i in ids],
    )
    newest_first = sorted(ids, reverse=True)
    headers = minter.headers(org.owner)
    one_page = (await client.get("/api/v1/audit-log", params={"limit": 100}, headers=headers)).json()
    assert [int(i["id"]) for i in one_page["items"]] == newest_first
    assert one_page["next_cursor"] is None
    for limit in (3, 7):
        items, pages = await walk(client, "/api/v1/audit-log", headers, limit)
        assert [int(i["id"]) for i in items] == newest_first
        assert pages == -(-len(ids) // limit)
