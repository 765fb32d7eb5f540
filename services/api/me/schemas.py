"""Body of GET /me."""

from __future__ import annotations

from pydantic import BaseModel

from services.api.org.schemas import OrgOut, principal_org
from services.api.principal import Principal
from shared.user_schema import User


class MeOut(BaseModel):
    user: User
    org: OrgOut


def me_out(me: Principal) -> MeOut:
    """The caller and their organization as loaded with them."""
    user = User(
        id=me.user_id, org_id=me.org_id, email=me.email, name=me.name, role=me.role,
        email_verified=me.email_verified_at is not None, created_at=me.created_at,
    )
    return MeOut(user=user, org=principal_org(me))
