"""Body of GET /me."""

from __future__ import annotations

from pydantic import BaseModel

from services.api.members.schemas import UserOut
from services.api.org.schemas import OrgOut, principal_org
from services.api.principal import Principal


class MeOut(BaseModel):
    user: UserOut
    org: OrgOut


def me_out(me: Principal) -> MeOut:
    """The caller and their organization as loaded with them."""
    user = UserOut(
        id=me.user_id, email=me.email, name=me.name, role=me.role,
        email_verified=me.email_verified_at is not None, created_at=me.created_at,
    )
    return MeOut(user=user, org=principal_org(me))
