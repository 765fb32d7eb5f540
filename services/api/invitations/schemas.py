"""Bodies of the invitation endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.roles import Role

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(max_length=320)
    role: Role = Role.MEMBER


class InvitationOut(BaseModel):
    id: UUID
    email: str
    role: Role
    status: InvitationStatus
    invited_by: UUID | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
