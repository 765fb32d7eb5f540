"""Invitations: create (one-time token stored hashed, email job queued), list, revoke, 409s."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

from shared.access_tokens import b64url_decode
from tests.api.helpers import add_member, audit_rows, queued_emails, running


def new_email() -> str:
    return f"Guest-{uuid.uuid4().hex[:8]}@example.com"


async def test_create_invitation_stores_hash_and_enqueues_email(api, minter, make_org, admin):
    org = await make_org("owner", "admin")
    actor = org.by_role("admin")
    email = new_email()
    response = await api.client.post(
        "/api/v1/invitations", json={"email": email, "role": "admin"}, headers=minter.headers(actor)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == email and body["role"] == "admin" and body["status"] == "pending"
    assert body["invited_by"] == str(actor.id)

    (job,) = [j for j in await queued_emails(api.settings) if j["k"]["to"] == email]
    assert job["f"] == "send_email" and job["k"]["template"] == "invitation"
    context = job["k"]["context"]
    assert context["org_name"] == org.name and context["inviter_name"] == actor.name
    assert context["role"] == "admin" and context["expires_in_seconds"] == api.settings.invitation_ttl_seconds
    prefix = f"{str(api.settings.app_base_url).rstrip('/')}/auth/accept-invitation#token="
    assert context["link"].startswith(prefix)
    raw = b64url_decode(context["link"][len(prefix) :])
    assert len(raw) == 32

    token = await admin.fetchrow(
        "SELECT * FROM one_time_tokens WHERE invitation_id = $1", uuid.UUID(body["id"])
    )
    assert token["purpose"] == "invitation" and token["org_id"] == org.id
    assert bytes(token["token_hash"]) == hashlib.sha256(raw).digest()  # only the hash is stored
    (event,) = await audit_rows(admin, org)
    assert event["action"] == "invitation.created" and event["target_id"] == body["id"]
    assert event["request_id"] == response.headers["x-request-id"]
    details = json.loads(event["details"])
    assert details == {"email": email, "role": "admin"}  # never the token


async def test_duplicate_pending_invitation_and_existing_member_are_409(client, minter, make_org, admin):
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    email = new_email()
    response = await client.post("/api/v1/invitations", json={"email": email}, headers=headers)
    assert response.status_code == 201
    response = await client.post("/api/v1/invitations", json={"email": email.upper()}, headers=headers)
    assert response.status_code == 409
    member = await add_member(admin, org, "member")
    response = await client.post("/api/v1/invitations", json={"email": member.email.upper()}, headers=headers)
    assert response.status_code == 409
    assert await admin.fetchval("SELECT count(*) FROM invitations WHERE org_id = $1", org.id) == 1


async def test_expired_invitation_does_not_block_a_new_one(client, minter, make_org, admin):
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    email = new_email()
    first = (await client.post("/api/v1/invitations", json={"email": email}, headers=headers)).json()
    await admin.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1",
        uuid.UUID(first["id"]),
    )
    listed = (await client.get("/api/v1/invitations", headers=headers)).json()["items"]
    assert [i["status"] for i in listed] == ["expired"]
    response = await client.post("/api/v1/invitations", json={"email": email}, headers=headers)
    assert response.status_code == 201


async def test_role_rules_for_invitations(client, minter, make_org, admin):
    org = await make_org("owner", "admin", "member")
    response = await client.post(
        "/api/v1/invitations", json={"email": new_email()}, headers=minter.headers(org.by_role("member"))
    )
    assert response.status_code == 403
    response = await client.post(
        "/api/v1/invitations",
        json={"email": new_email(), "role": "owner"},
        headers=minter.headers(org.by_role("admin")),
    )
    assert response.status_code == 403
    response = await client.post(
        "/api/v1/invitations",
        json={"email": new_email(), "role": "owner"},
        headers=minter.headers(org.owner),
    )
    assert response.status_code == 201
    response = await client.get("/api/v1/invitations", headers=minter.headers(org.by_role("member")))
    assert response.status_code == 403
    for bad in ({"email": "not-an-email"}, {"email": new_email(), "role": "god"}, {}):
        response = await client.post("/api/v1/invitations", json=bad, headers=minter.headers(org.owner))
        assert response.status_code == 422


async def test_revoke_invitation(client, minter, make_org, admin):
    org = await make_org("owner", "member")
    headers = minter.headers(org.owner)
    created = (await client.post("/api/v1/invitations", json={"email": new_email()}, headers=headers)).json()
    response = await client.delete(
        f"/api/v1/invitations/{created['id']}", headers=minter.headers(org.by_role("member"))
    )
    assert response.status_code == 403
    response = await client.delete(f"/api/v1/invitations/{created['id']}", headers=headers)
    assert response.status_code == 204
    invitation_id = uuid.UUID(created["id"])
    assert await admin.fetchval("SELECT revoked_at IS NOT NULL FROM invitations WHERE id = $1", invitation_id)
    assert await admin.fetchval(
        "SELECT consumed_at IS NOT NULL FROM one_time_tokens WHERE invitation_id = $1", invitation_id
    )
    # Idempotent: revoking again is a 204 with no second event.
    assert (await client.delete(f"/api/v1/invitations/{created['id']}", headers=headers)).status_code == 204
    actions = [row["action"] for row in await audit_rows(admin, org)]
    assert actions == ["invitation.created", "invitation.revoked"]
    listed = (await client.get("/api/v1/invitations", headers=headers)).json()["items"]
    assert listed[0]["status"] == "revoked"
    # An accepted invitation cannot be revoked.
    other = (await client.post("/api/v1/invitations", json={"email": new_email()}, headers=headers)).json()
    await admin.execute("UPDATE invitations SET accepted_at = now() WHERE id = $1", uuid.UUID(other["id"]))
    assert (await client.delete(f"/api/v1/invitations/{other['id']}", headers=headers)).status_code == 409
    assert (await client.delete(f"/api/v1/invitations/{uuid.uuid4()}", headers=headers)).status_code == 404


async def test_enqueue_failure_rolls_back_the_invitation(api_settings, minter, make_org, admin):
    """If the email cannot be queued, nothing is stored and the client gets a 503."""
    from devstack.ports import free_port
    from tests.api.helpers import running

    org = await make_org("owner")
    settings = api_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with running(settings) as dead:
        response = await dead.client.post(
            "/api/v1/invitations", json={"email": new_email()}, headers=minter.headers(org.owner)
        )
    assert response.status_code == 503
    assert await admin.fetchval("SELECT count(*) FROM invitations WHERE org_id = $1", org.id) == 0
    assert await audit_rows(admin, org) == []


async def test_revoke_racing_acceptance_takes_locks_in_the_same_order(client, minter, make_org, admin):
    """Revoke vs the auth service's acceptance (token row, invitation row, member insert): no
    deadlock, whichever starts first; here acceptance holds the token first and wins, revoke is 409."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    created = await client.post("/api/v1/invitations", json={"email": "racer@example.com"}, headers=headers)
    invitation_id = uuid.UUID(created.json()["id"])
    transaction = admin.transaction()
    await transaction.start()
    try:
        # Acceptance, as services/auth/invitations.py does it: consume the token first...
        await admin.execute(
            "UPDATE one_time_tokens SET consumed_at = now() WHERE invitation_id = $1 AND consumed_at IS NULL",
            invitation_id,
        )
        revoke = asyncio.ensure_future(client.delete(f"/api/v1/invitations/{invitation_id}", headers=headers))
        await asyncio.sleep(0.3)
        # ...then lock the invitation and insert the member (a foreign-key check on the org).
        await admin.execute("SELECT 1 FROM invitations WHERE id = $1 FOR UPDATE", invitation_id)
        await add_member(admin, org, "member")
        await admin.execute("UPDATE invitations SET accepted_at = now() WHERE id = $1", invitation_id)
    finally:
        await transaction.commit()
    response = await revoke
    assert response.status_code == 409, response.text


async def _pending_from(client, minter, inviter, count=2):
    ids = []
    for role in ("admin", "member")[:count]:
        response = await client.post(
            "/api/v1/invitations", json={"email": new_email(), "role": role}, headers=minter.headers(inviter)
        )
        assert response.status_code == 201, response.text
        ids.append(uuid.UUID(response.json()["id"]))
    return ids


async def _revoked_and_spent(admin, invitation_id):
    revoked = await admin.fetchval(
        "SELECT revoked_at IS NOT NULL FROM invitations WHERE id = $1", invitation_id
    )
    unspent = await admin.fetchval(
        "SELECT count(*) FROM one_time_tokens WHERE invitation_id = $1 AND consumed_at IS NULL", invitation_id
    )
    return revoked and unspent == 0


async def test_removing_a_member_revokes_the_invitations_they_sent(client, minter, make_org, admin):
    """Security review finding 5: an admin's accomplice could still accept after the admin left."""
    org = await make_org("owner", "admin")
    insider = org.by_role("admin")
    sent = await _pending_from(client, minter, insider)
    removed = await client.delete(f"/api/v1/users/{insider.id}", headers=minter.headers(org.owner))
    assert removed.status_code == 204, removed.text
    for invitation_id in sent:
        assert await _revoked_and_spent(admin, invitation_id)
    actions = [r["action"] for r in await audit_rows(admin, org)]
    assert actions.count("invitation.revoked") == 2


async def test_losing_the_manager_role_revokes_the_invitations_sent(client, minter, make_org, admin):
    org = await make_org("owner", "admin")
    insider = org.by_role("admin")
    sent = await _pending_from(client, minter, insider)
    own = await _pending_from(client, minter, org.owner, count=1)
    demoted = await client.patch(
        f"/api/v1/users/{insider.id}", json={"role": "member"}, headers=minter.headers(org.owner)
    )
    assert demoted.status_code == 200, demoted.text
    for invitation_id in sent:
        assert await _revoked_and_spent(admin, invitation_id)
    assert not await _revoked_and_spent(admin, own[0])  # the owner's invitation stands


async def test_invitation_mails_are_capped_per_recipient_and_per_org(api_settings, minter, make_org, admin):
    """Security review finding 6: POST + DELETE loops sent 100 mails a minute to any address."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    target = new_email()
    settings = api_settings(invitations_per_recipient_per_day=2, invitations_per_org_per_day=4)
    async with running(settings) as api:
        for _ in range(2):
            created = await api.client.post("/api/v1/invitations", json={"email": target}, headers=headers)
            assert created.status_code == 201, created.text
            revoked = await api.client.delete(f"/api/v1/invitations/{created.json()['id']}", headers=headers)
            assert revoked.status_code == 204
        refused = await api.client.post("/api/v1/invitations", json={"email": target}, headers=headers)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "retry-after" in refused.headers
        # Other recipients until the org's daily cap (4 mails: 2 sent above, 2 more).
        for _ in range(2):
            other = await api.client.post("/api/v1/invitations", json={"email": new_email()}, headers=headers)
            assert other.status_code == 201, other.text
        capped = await api.client.post("/api/v1/invitations", json={"email": new_email()}, headers=headers)
        assert capped.status_code == 429
        mails = [j for j in await queued_emails(api.settings) if j["k"]["to"] == target]
        assert len(mails) == 2
