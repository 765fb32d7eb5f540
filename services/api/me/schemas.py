"""Body of GET /me."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from services.api.api_keys.credential import KeyPrincipal
from services.api.api_keys.schemas import Scope
from services.api.org.schemas import OrgOut, key_org, principal_org
from services.api.principal import Principal
from shared.user_schema import User, public_user


class MeOut(BaseModel):
    credential: Literal["user"] = "user"
    user: User
    org: OrgOut


class KeyOut(BaseModel):
    id: UUID
    name: str
    scopes: list[Scope]


class KeyMeOut(BaseModel):
    """GET /me with an API key: the key and the org it acts for (there is no user)."""

    credential: Literal["api_key"] = "api_key"
    key: KeyOut
    org: OrgOut


def me_out(me: Principal) -> MeOut:
    """The caller and their organization as loaded with them."""
    return MeOut(user=public_user(me.user_id, me), org=principal_org(me))


def key_me_out(key: KeyPrincipal) -> KeyMeOut:
    """The key and the org it acts for, as read when it was verified."""
    return KeyMeOut(key=KeyOut(id=key.key_id, name=key.name, scopes=list(key.scopes)), org=key_org(key))
