"""Request and response bodies of the api."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from shared.user_schema import User

Role = Literal["owner", "admin", "member"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class OrgOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime
    updated_at: datetime


class MeOut(BaseModel):
    user: User
    org: OrgOut


class OrgPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    role: Role | None = None


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(max_length=320)
    role: Role = "member"


class InvitationOut(BaseModel):
    id: UUID
    email: str
    role: Role
    status: Literal["pending", "accepted", "revoked", "expired"]
    invited_by: UUID | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class AuditEventOut(BaseModel):
    id: str
    actor_user_id: UUID | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]
    request_id: str | None
    ip_address: str | None
    created_at: datetime
