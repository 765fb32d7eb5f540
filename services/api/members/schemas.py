"""Bodies of the members endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from services.api.fields import Name
from services.api.members.queries import UserRow
from shared.roles import Role
from shared.user_schema import User, public_user


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    role: Role | None = None


def user_out(row: UserRow) -> User:
    """The public shape of a member row."""
    return public_user(row.id, row)
