"""Bodies of the members endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from services.api.fields import Name
from services.api.members.queries import UserRow
from shared.roles import Role
from shared.user_schema import User


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    role: Role | None = None


def user_out(row: UserRow) -> User:
    """The public shape of a member row."""
    return User(
        id=row.id,
        org_id=row.org_id,
        email=row.email,
        name=row.name,
        role=row.role,
        email_verified=row.email_verified_at is not None,
        created_at=row.created_at,
    )
