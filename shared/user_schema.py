"""The public `User` object: one shape in every token response, `/me` and `/users`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from shared.roles import Role


class User(BaseModel):
    """A member of an organization, as every service returns it."""

    id: UUID
    org_id: UUID
    email: str
    name: str
    role: Role
    email_verified: bool
    created_at: datetime
