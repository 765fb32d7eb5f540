"""Helpers shared by the route modules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.deps import Principal
from services.api.schemas import OrgOut
from shared.errors import Unauthorized
from shared.user_schema import User

USER_COLUMNS = "id, org_id, email, name, role, email_verified_at, created_at"


def user_out(row: Any) -> User:
    return User(
        id=row.id, org_id=row.org_id, email=row.email, name=row.name, role=row.role,
        email_verified=row.email_verified_at is not None, created_at=row.created_at,
    )


def principal_user(me: Principal) -> User:
    return User(
        id=me.user_id, org_id=me.org_id, email=me.email, name=me.name, role=me.role,
        email_verified=me.email_verified_at is not None, created_at=me.created_at,
    )


def principal_org(me: Principal) -> OrgOut:
    return OrgOut(
        id=me.org_id, name=me.org_name, created_at=me.org_created_at, updated_at=me.org_updated_at
    )


async def lock_org(session: AsyncSession, me: Principal) -> Principal:
    """Serialize membership changes of one org (the last-owner rule must see a stable count).

    Returns the caller re-read under the lock: a concurrent change may have demoted them.
    """
    # NO KEY UPDATE: conflicts with itself (api mutations are serialized) but not with the
    # KEY SHARE lock a foreign-key check takes, so inserting a member (the auth service accepting
    # an invitation while holding that invitation's row) never waits on it: no lock cycle.
    await session.execute(
        text("SELECT id FROM organizations WHERE id = :org FOR NO KEY UPDATE"), {"org": me.org_id}
    )
    role = (
        await session.execute(text("SELECT role FROM users WHERE id = :id"), {"id": me.user_id})
    ).scalar_one_or_none()
    if role is None:
        raise Unauthorized("The user of this access token no longer exists.")
    return me if role == me.role else replace(me, role=role)


async def owner_count(session: AsyncSession) -> int:
    count = (await session.execute(text("SELECT count(*) FROM users WHERE role = 'owner'"))).scalar_one()
    return int(count)
