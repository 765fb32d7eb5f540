"""Names with control characters are a 422 in the api (security review findings 6 and 11)."""

from __future__ import annotations

import pytest

BAD_NAMES = ["Acme\x00", "Acme\nSecond line", "Acme\u202e"]


@pytest.mark.parametrize("bad", BAD_NAMES)
async def test_org_and_user_names_refuse_control_characters(client, minter, make_org, admin, bad):
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    renamed = await client.patch("/api/v1/org", json={"name": bad}, headers=headers)
    assert renamed.status_code == 422, renamed.text
    assert renamed.headers["content-type"] == "application/problem+json"
    user = await client.patch(f"/api/v1/users/{org.owner.id}", json={"name": bad}, headers=headers)
    assert user.status_code == 422, user.text
    assert await admin.fetchval("SELECT name FROM organizations WHERE id = $1", org.id) == org.name
    assert (await client.patch("/api/v1/org", json={"name": "Acme Two"}, headers=headers)).status_code == 200
