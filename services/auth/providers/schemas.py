"""Request and response bodies of the external-provider routes."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from services.auth.schemas import Body, OneTimeToken


class ProviderOut(BaseModel):
    id: str
    name: str


class ProviderList(BaseModel):
    items: list[ProviderOut]


class ProviderStartRequest(Body):
    invitation_token: OneTimeToken


class AuthorizationOut(BaseModel):
    """Where the page sends the browser next (the provider's authorization endpoint)."""

    authorization_url: str


class IdentityOut(BaseModel):
    id: UUID
    provider: str
    provider_name: str
    email: str | None
    created_at: datetime
    last_used_at: datetime | None


class IdentityList(BaseModel):
    items: list[IdentityOut]
