"""GET /audit-log: managers only, newest first, every event exactly once across pages."""

from __future__ import annotations

from tests.api.helpers import walk


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
