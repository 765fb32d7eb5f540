"""Bodies of the members endpoints."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from services.api.fields import Name
from services.api.members.queries import UserRow
from shared.roles import Role


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: Role
    email_verified: bool
    created_at: datetime


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    role: Role | None = None


def user_out(row: UserRow) -> UserOut:
    """The public shape of a member row."""
    return UserOut(
        id=row.id,
        email=row.email,
        name=row.name,
        role=row.role,
        email_verified=row.email_verified_at is not None,
        created_at=row.created_at,
    )
