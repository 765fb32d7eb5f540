"""The member rules called directly at the service layer (no HTTP), against the real database.

Each refusal is a named error of the one hierarchy (so it renders as its problem), and a refused
change leaves the organization exactly as it was.
"""

from __future__ import annotations

import json

import pytest

from devstack.ports import free_port
from services.api.invitations import service as invitations
from services.api.members import service as members
from services.api.org import service as org_service
from services.api.principal import NotManager
from shared.db import transaction
from shared.errors import Conflict, ServiceUnavailable
from shared.redis import create_redis
from shared.roles import Role
from shared.sessions.revocation import revoke_user_sessions
from tests.api.helpers import add_session, audit_rows, snapshot
from tests.api.service_calls import principal, refused


async def test_last_owner_cannot_be_demoted_or_removed(sessions, make_org, admin, api_settings):
    org = await make_org("owner", "admin")
    owner = org.owner
    before = await snapshot(admin, org)
    settings = api_settings()
    redis = create_redis(settings)
    try:
        error = await refused(
            sessions,
            owner,
            lambda s, me: members.change_member(s, me, owner.id, name=None, role=Role.ADMIN),
            members.LastOwner,
        )
        assert isinstance(error, Conflict) and "last owner" in error.detail
        await refused(
            sessions,
            owner,
            lambda s, me: members.remove_member(s, me, owner.id, redis=redis, settings=settings),
            members.LastOwner,
        )
    finally:
        await redis.aclose()
    assert await snapshot(admin, org) == before


async def test_a_second_owner_lifts_the_last_owner_rule(sessions, make_org, admin):
    org = await make_org("owner", "owner")
    first, second = org.members
    async with transaction(sessions, org.id) as session:
        row = await members.change_member(
            session, await principal(session, first), second.id, name=None, role=Role.MEMBER
        )
    assert row.role == "member"
    assert await admin.fetchval("SELECT role FROM users WHERE id = $1", second.id) == "member"


async def test_admin_cannot_promote_above_self(sessions, make_org, admin):
    org = await make_org("owner", "admin", "member")
    actor, member = org.by_role("admin"), org.by_role("member")
    before = await snapshot(admin, org)
    for target, role in ((member, "owner"), (actor, "owner"), (org.owner, "member")):
        await refused(
            sessions,
            actor,
            lambda s, me, t=target, r=role: members.change_member(s, me, t.id, name=None, role=r),
            members.CannotPromoteAboveSelf,
        )
    await refused(
        sessions,
        actor,
        lambda s, me: invitations.invite(
            s,
            me,
            email="new@example.com",
            role=Role.OWNER,
            redis=None,  # type: ignore[arg-type]
            settings=None,  # type: ignore[arg-type]
        ),
        invitations.OwnerInviteNeedsOwner,
    )
    assert await snapshot(admin, org) == before


async def test_members_manage_nothing_and_rename_only_themselves(sessions, make_org, admin):
    org = await make_org("owner", "member")
    member = org.by_role("member")
    before = await snapshot(admin, org)
    await refused(
        sessions,
        member,
        lambda s, me: members.change_member(s, me, member.id, name=None, role=Role.ADMIN),
        NotManager,
    )
    await refused(
        sessions,
        member,
        lambda s, me: members.change_member(s, me, org.owner.id, name="Someone else", role=None),
        members.NotOwnName,
    )
    await refused(sessions, member, lambda s, me: org_service.rename(s, me, "Mine now"), NotManager)
    await refused(
        sessions,
        member,
        lambda s, me: invitations.list_invitations(s, me, limit=10, cursor=None),
        NotManager,
    )
    assert await snapshot(admin, org) == before


async def test_another_orgs_member_is_not_found(sessions, make_org):
    mine, theirs = await make_org("owner"), await make_org("owner", "member")
    await refused(
        sessions,
        mine.owner,
        lambda s, me: members.get_member(s, theirs.by_role("member").id),
        members.MemberNotFound,
    )


async def test_session_revocation_with_redis_down(sessions, make_org, admin, api_settings):
    """Required markers (auth): 503 and nothing revoked. Best effort (member removal): done."""
    org = await make_org("owner", "member")
    member = org.by_role("member")
    sid = await add_session(admin, member)
    dead = api_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    redis = create_redis(dead)
    try:
        with pytest.raises(ServiceUnavailable):
            async with transaction(sessions, org.id) as session:
                await revoke_user_sessions(session, redis, dead, member.id, reason="logout_all")
        assert await admin.fetchval("SELECT revoked_at FROM sessions WHERE id = $1", sid) is None
        async with transaction(sessions, org.id) as session:
            await members.remove_member(
                session, await principal(session, org.owner), member.id, redis=redis, settings=dead
            )
    finally:
        await redis.aclose()
    assert await admin.fetchval("SELECT count(*) FROM users WHERE id = $1", member.id) == 0
    (event,) = [row for row in await audit_rows(admin, org) if row["action"] == "user.removed"]
    assert json.loads(event["details"])["sessions_revoked"] == 1
