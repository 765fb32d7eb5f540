"""Members through GET, PATCH and DELETE /users/{id}: role rules, the last-owner rule, another
org's ids not found."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.api.helpers import add_member, add_session, audit_rows


async def role_of(admin, member):
    return await admin.fetchval("SELECT role FROM users WHERE id = $1", member.id)


async def patch(client, minter, actor, target, body):
    return await client.patch(f"/api/v1/users/{target.id}", json=body, headers=minter.headers(actor))


async def test_member_cannot_change_roles_or_raise_own(client, minter, make_org, admin):
    org = await make_org("owner", "admin", "member")
    member = org.by_role("member")
    for target, role in ((member, "admin"), (member, "owner"), (org.by_role("admin"), "member")):
        response = await patch(client, minter, member, target, {"role": role})
        assert response.status_code == 403, response.text
    assert await role_of(admin, member) == "member"
    assert await role_of(admin, org.by_role("admin")) == "admin"
    assert await audit_rows(admin, org) == []


async def test_admin_can_manage_members_but_not_owners(client, minter, make_org, admin):
    org = await make_org("owner", "admin", "member")
    actor, member = org.by_role("admin"), org.by_role("member")
    response = await patch(client, minter, actor, member, {"role": "admin"})
    assert response.status_code == 200 and response.json()["role"] == "admin"
    # Only owners grant or revoke owner.
    assert (await patch(client, minter, actor, member, {"role": "owner"})).status_code == 403
    assert (await patch(client, minter, actor, actor, {"role": "owner"})).status_code == 403
    assert (await patch(client, minter, actor, org.owner, {"role": "admin"})).status_code == 403
    response = await client.delete(f"/api/v1/users/{org.owner.id}", headers=minter.headers(actor))
    assert response.status_code == 403
    assert await role_of(admin, org.owner) == "owner"
    (event,) = await audit_rows(admin, org)
    assert event["action"] == "user.role_changed"
    assert json.loads(event["details"]) == {"from": "member", "to": "admin"}


async def test_name_change_by_self_only(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    response = await patch(client, minter, member, member, {"name": "New Name"})
    assert response.status_code == 200 and response.json()["name"] == "New Name"
    response = await patch(client, minter, org.owner, member, {"name": "Owner says"})
    assert response.status_code == 403
    assert await admin.fetchval("SELECT name FROM users WHERE id = $1", member.id) == "New Name"
    (event,) = await audit_rows(admin, org)
    assert event["action"] == "user.updated" and event["target_id"] == str(member.id)


async def test_last_owner_can_never_be_demoted_or_removed(client, minter, make_org, admin):
    org = await make_org("owner", "admin")
    owner = org.owner
    response = await patch(client, minter, owner, owner, {"role": "admin"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    response = await client.delete(f"/api/v1/users/{owner.id}", headers=minter.headers(owner))
    assert response.status_code == 409
    assert await role_of(admin, owner) == "owner"

    # With a second owner, one of them can step down and the other can be removed.
    response = await patch(client, minter, owner, org.by_role("admin"), {"role": "owner"})
    assert response.status_code == 200
    assert (await patch(client, minter, owner, owner, {"role": "admin"})).status_code == 200
    second = org.by_role("admin")
    response = await client.delete(f"/api/v1/users/{owner.id}", headers=minter.headers(second))
    assert response.status_code == 204
    # ...and now `second` is the last owner again.
    assert (await patch(client, minter, second, second, {"role": "member"})).status_code == 409


async def test_concurrent_demotions_leave_an_owner(client, minter, make_org, admin):
    org = await make_org("owner", "owner")
    a, b = org.members
    responses = await asyncio.gather(
        patch(client, minter, a, b, {"role": "member"}),
        patch(client, minter, b, a, {"role": "member"}),
    )
    statuses = sorted(r.status_code for r in responses)
    # Serialized by the org row lock: one succeeds; the other either finds its actor demoted
    # (403) or the target to be the last owner (409).
    assert statuses[0] == 200 and statuses[1] in (403, 409)
    owners = await admin.fetchval("SELECT count(*) FROM users WHERE org_id = $1 AND role = 'owner'", org.id)
    assert owners == 1


async def test_remove_user_revokes_sessions_and_is_audited(api, minter, make_org, admin):
    client = api.client
    org = await make_org("owner", "member")
    member = org.by_role("member")
    sid = await add_session(admin, member)
    member_headers = minter.headers(member, sid=sid)
    assert (await client.get("/api/v1/me", headers=member_headers)).status_code == 200
    response = await client.delete(f"/api/v1/users/{member.id}", headers=minter.headers(org.owner))
    assert response.status_code == 204
    assert await admin.fetchval("SELECT count(*) FROM users WHERE id = $1", member.id) == 0
    from shared.access_tokens import revoked_sid_key
    from shared.redis import create_redis

    redis = create_redis(api.settings)
    try:
        assert await redis.exists(revoked_sid_key(api.settings, sid))
    finally:
        await redis.aclose()
    assert (await client.get("/api/v1/me", headers=member_headers)).status_code == 401
    (event,) = await audit_rows(admin, org)
    assert event["action"] == "user.removed"
    assert event["target_id"] == str(member.id)
    assert event["request_id"] == response.headers["x-request-id"]
    assert json.loads(event["details"])["sessions_revoked"] == 1
    # Deleting again: the user is gone, 404.
    response = await client.delete(f"/api/v1/users/{member.id}", headers=minter.headers(org.owner))
    assert response.status_code == 404


async def test_member_cannot_remove_anyone(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    extra = await add_member(admin, org, "member")
    response = await client.delete(f"/api/v1/users/{extra.id}", headers=minter.headers(org.by_role("member")))
    assert response.status_code == 403
    assert await admin.fetchval("SELECT count(*) FROM users WHERE id = $1", extra.id) == 1


async def test_noop_patch_writes_no_audit(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    response = await patch(client, minter, org.owner, member, {"role": "member"})
    assert response.status_code == 200
    assert await audit_rows(admin, org) == []


@pytest.mark.parametrize("action", ["invite", "rename_org", "revoke_invitation"])
async def test_admin_demoted_concurrently_is_refused(client, minter, make_org, admin, action):
    """A demotion committed while the request waits for the org lock is the role that counts."""
    org = await make_org("owner", "admin")
    demoted = org.by_role("admin")
    headers = minter.headers(demoted)
    invitation = await client.post(
        "/api/v1/invitations",
        json={"email": f"x-{uuid.uuid4().hex[:8]}@example.com"},
        headers=minter.headers(org.owner),
    )
    assert invitation.status_code == 201
    requests = {
        "invite": lambda: client.post(
            "/api/v1/invitations", json={"email": "late@example.com"}, headers=headers
        ),
        "rename_org": lambda: client.patch("/api/v1/org", json={"name": "Late"}, headers=headers),
        "revoke_invitation": lambda: client.delete(
            f"/api/v1/invitations/{invitation.json()['id']}", headers=headers
        ),
    }
    transaction = admin.transaction()
    await transaction.start()
    try:
        # What a concurrent PATCH /users/{id} by the owner does: org lock, then the demotion.
        await admin.execute("SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE", org.id)
        await admin.execute("UPDATE users SET role = 'member' WHERE id = $1", demoted.id)
        pending = asyncio.ensure_future(requests[action]())
        await asyncio.sleep(0.5)
        assert not pending.done()  # waiting for the org lock
    finally:
        await transaction.commit()
    response = await pending
    assert response.status_code == 403, response.text


async def test_other_orgs_ids_are_invisible_to_every_role(client, minter, make_org):
    org_a = await make_org("owner", "admin", "member")
    org_b = await make_org("owner")
    for member in org_a.members:
        response = await client.get(f"/api/v1/users/{org_b.owner.id}", headers=minter.headers(member))
        assert response.status_code == 404


async def test_nonexistent_id_is_404(client, minter, make_org):
    org = await make_org("owner")
    response = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=minter.headers(org.owner))
    assert response.status_code == 404
    assert response.json()["type"].endswith("/not-found")
