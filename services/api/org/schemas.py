"""Bodies of the organization endpoints."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from services.api.api_keys.credential import KeyPrincipal
from services.api.fields import Name
from services.api.org.queries import OrgRow
from services.api.principal import Principal


class OrgOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime
    updated_at: datetime


class OrgPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name


def principal_org(me: Principal) -> OrgOut:
    """The caller's organization as loaded with them."""
    return OrgOut(id=me.org_id, name=me.org_name, created_at=me.org_created_at, updated_at=me.org_updated_at)


def org_out(row: OrgRow) -> OrgOut:
    return OrgOut(id=row.id, name=row.name, created_at=row.created_at, updated_at=row.updated_at)


def key_org(key: KeyPrincipal) -> OrgOut:
    """The organization of an API key, as read when the key was verified."""
    return OrgOut(
        id=key.org_id, name=key.org_name, created_at=key.org_created_at, updated_at=key.org_updated_at
    )
