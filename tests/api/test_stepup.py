"""Step-up on the api's routes that change who can do what: inviting, removing a member, a role
change. A token whose `auth_time` is older than REAUTHENTICATION_MAX_AGE_SECONDS is refused with
`reauthentication-required`, and nothing is written."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.api.helpers import audit_rows


def _stale(max_age: int) -> int:
    return int(time.time()) - max_age - 60


def _refused(response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/reauthentication-required")


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
async def test_inviting_needs_a_recent_authentication(api, minter, make_org, admin, role):
    org = await make_org("owner")
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    stale = minter.headers(org.owner, auth_time=_stale(api.settings.reauthentication_max_age_seconds))
    body = {"email": email, "role": role}
    _refused(await api.client.post("/api/v1/invitations", json=body, headers=stale))
    assert await admin.fetchval("SELECT count(*) FROM invitations WHERE org_id = $1", org.id) == 0
    assert await audit_rows(admin, org) == []

    fresh = await api.client.post("/api/v1/invitations", json=body, headers=minter.headers(org.owner))
    assert fresh.status_code == 201, fresh.text


async def test_removing_a_member_needs_a_recent_authentication(api, minter, make_org, admin):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    stale = minter.headers(org.owner, auth_time=_stale(api.settings.reauthentication_max_age_seconds))
    _refused(await api.client.delete(f"/api/v1/users/{member.id}", headers=stale))
    assert await admin.fetchval("SELECT count(*) FROM users WHERE id = $1", member.id) == 1

    fresh = await api.client.delete(f"/api/v1/users/{member.id}", headers=minter.headers(org.owner))
    assert fresh.status_code == 204


async def test_role_change_needs_a_recent_authentication_a_rename_does_not(api, minter, make_org, admin):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    stale = minter.headers(org.owner, auth_time=_stale(api.settings.reauthentication_max_age_seconds))
    url = f"/api/v1/users/{member.id}"
    _refused(await api.client.patch(url, json={"role": "admin"}, headers=stale))
    assert await admin.fetchval("SELECT role FROM users WHERE id = $1", member.id) == "member"
    own = f"/api/v1/users/{org.owner.id}"
    assert (await api.client.patch(own, json={"name": "Ada L."}, headers=stale)).status_code == 200
    changed = await api.client.patch(url, json={"role": "admin"}, headers=minter.headers(org.owner))
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
