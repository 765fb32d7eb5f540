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
