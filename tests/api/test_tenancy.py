"""Two orgs: every route tried with the other org's ids is a 404 and changes nothing."""

from __future__ import annotations

import uuid

import pytest

from tests.api.helpers import add_session, snapshot


async def _invite(client, minter, member, email=None):
    response = await client.post(
        "/api/v1/invitations",
        json={"email": email or f"guest-{uuid.uuid4().hex[:8]}@example.com", "role": "member"},
        headers=minter.headers(member),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_every_route_across_tenants_is_404_and_changes_nothing(client, minter, make_org, admin):
    org_a = await make_org("owner", "admin", "member")
    org_b = await make_org("owner", "admin", "member")
    await add_session(admin, org_b.by_role("member"))
    invitation_b = await _invite(client, minter, org_b.owner)
    before = await snapshot(admin, org_b)

    attacker = minter.headers(org_a.owner)  # the most powerful role of org A
    victim_user = org_b.by_role("member").id
    victim_owner = org_b.owner.id
    attempts = [
        ("GET", f"/api/v1/users/{victim_user}", None),
        ("PATCH", f"/api/v1/users/{victim_user}", {"role": "admin"}),
        ("PATCH", f"/api/v1/users/{victim_owner}", {"role": "member"}),
        ("PATCH", f"/api/v1/users/{victim_user}", {"name": "pwned"}),
        ("DELETE", f"/api/v1/users/{victim_user}", None),
        ("DELETE", f"/api/v1/users/{victim_owner}", None),
        ("DELETE", f"/api/v1/invitations/{invitation_b['id']}", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=attacker)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"

    # Collections and singletons show only the caller's own org.
    users = (await client.get("/api/v1/users", headers=attacker)).json()["items"]
    assert {u["id"] for u in users} == {str(m.id) for m in org_a.members}
    invitations = (await client.get("/api/v1/invitations", headers=attacker)).json()["items"]
    assert invitation_b["id"] not in {i["id"] for i in invitations}
    audit = (await client.get("/api/v1/audit-log", headers=attacker)).json()["items"]
    assert all(e["target_id"] != invitation_b["id"] for e in audit)
    me = (await client.get("/api/v1/me", headers=attacker)).json()
    assert me["org"]["id"] == str(org_a.id)
    assert (await client.get("/api/v1/org", headers=attacker)).json()["id"] == str(org_a.id)
    response = await client.patch("/api/v1/org", json={"name": "A renamed"}, headers=attacker)
    assert response.status_code == 200 and response.json()["id"] == str(org_a.id)
    # Inviting an address that is a member of ANOTHER org does not reveal it (not a 409).
    response = await client.post(
        "/api/v1/invitations", json={"email": org_b.owner.email, "role": "member"}, headers=attacker
    )
    assert response.status_code == 201

    assert await snapshot(admin, org_b) == before


async def test_invalid_uuid_path_is_a_422_problem(client, minter, make_org):
    org = await make_org("owner")
    for path in ("/api/v1/users/not-a-uuid", "/api/v1/invitations/123"):
        response = await client.delete(path, headers=minter.headers(org.owner))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    response = await client.get("/api/v1/users/not-a-uuid", headers=minter.headers(org.owner))
    assert response.status_code == 422


async def test_api_role_cannot_bypass_rls_or_rewrite_audit(database, make_org, client, minter):
    """The api's database role: no rows without a tenant, no audit rewriting, no DDL."""
    import asyncpg

    org = await make_org("owner")
    await client.patch("/api/v1/org", json={"name": "Audited"}, headers=minter.headers(org.owner))
    conn = await asyncpg.connect(database.api_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 0
        assert await conn.fetchval("SELECT count(*) FROM organizations") == 0
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.current_org_id', $1, true)", str(org.id))
            assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
        # The api role has no UPDATE grant on audit_log (and the trigger refuses anyone).
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE audit_log SET action = 'x'")
        for statement in ("DELETE FROM audit_log", "CREATE TABLE evil (id int)"):
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute(statement)
    finally:
        await conn.close()
