"""Bodies of the API key endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.names import DisplayName

Scope = Literal["read", "write"]
# Shown in lists, the audit log and `/me`: the same one-line visible-text rule as user and org
# names (no control characters, so no ANSI escapes or line breaks, and no bidi overrides).
KeyName = DisplayName


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: KeyName
    scopes: list[Scope] = Field(min_length=1, max_length=10)
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (must be in the future)"
    )


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str = Field(description="The public start of the key (`bb_<env>_<public id>`)")
    scopes: list[Scope]
    created_by: UUID | None = Field(description="Null once that user is deleted; see the audit log")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute")
    expires_at: datetime | None
    expired: bool
    revoked: bool
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown once, never again")
