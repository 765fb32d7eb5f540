"""The roles of an organization's members: the one definition every service uses."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A member's role; the database, the access tokens and the REST bodies hold these values."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


# Owners and admins manage members, invitations and the org; only an owner touches `owner`.
MANAGERS = frozenset({Role.OWNER, Role.ADMIN})

# Who may invite whom. The api checks it when an invitation is sent and revokes the pending
# invitations a demoted or removed sender could no longer send; the auth service checks it
# again on acceptance. One table, so the three checks cannot drift apart.
MAY_INVITE: dict[Role, frozenset[Role]] = {
    Role.OWNER: frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER}),
    Role.ADMIN: frozenset({Role.ADMIN, Role.MEMBER}),
    Role.MEMBER: frozenset(),
}


def may_invite(inviter: Role | None, invitee: Role) -> bool:
    """Whether a member of role `inviter` may invite someone as `invitee` (None: not a member)."""
    return inviter is not None and invitee in MAY_INVITE[inviter]
