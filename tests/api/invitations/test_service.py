"""The invitation rules called directly at the service layer (no HTTP), against the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.api.invitations import service as invitations
from services.api.invitations.queries import InvitationRow
from shared.roles import Role
from tests.api.helpers import snapshot
from tests.api.service_calls import refused


async def test_inviting_a_member_is_a_conflict(sessions, make_org, admin):
    org = await make_org("owner", "member")
    before = await snapshot(admin, org)
    await refused(
        sessions,
        org.owner,
        lambda s, me: invitations.invite(
            s,
            me,
            email=org.by_role("member").email.upper(),
            role=Role.MEMBER,
            redis=None,  # type: ignore[arg-type]
            settings=None,  # type: ignore[arg-type]
        ),
        invitations.AlreadyMember,
    )
    assert await snapshot(admin, org) == before


def test_invitation_status_is_final_once_answered():
    now = datetime.now(UTC)

    def row(**fields: Any) -> InvitationRow:
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "email": "a@example.com",
            "role": "member",
            "invited_by": None,
            "created_at": now,
            "expires_at": now,
            "accepted_at": None,
            "revoked_at": None,
            "expired": False,
        }
        values.update(fields)
        return InvitationRow(**values)

    assert invitations.status(row()) == "pending"
    assert invitations.status(row(expired=True)) == "expired"
    assert invitations.status(row(expired=True, revoked_at=now)) == "revoked"
    assert invitations.status(row(expired=True, accepted_at=now)) == "accepted"
