"""The public `User` object: one shape in every token response, `/me` and `/users`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel


class User(BaseModel):
    """A member of an organization, as every service returns it."""

    id: UUID
    org_id: UUID
    email: str
    name: str
    role: Literal["owner", "admin", "member"]
    email_verified: bool
    created_at: datetime
