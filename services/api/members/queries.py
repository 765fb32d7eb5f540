"""SQL of members and of the org lock that serializes membership changes.

Every statement runs in the request's tenant transaction: RLS limits it to the caller's org.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.tables.queries import Table
from shared.roles import Role

USER_COLUMNS = "id, org_id, email, name, role, email_verified_at, created_at"


@dataclass(frozen=True)
class UserRow:
    id: UUID
    org_id: UUID
    email: str
    name: str
    role: Role
    email_verified_at: datetime | None
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))  # the driver hands back the text


# The org's members, oldest first.
MEMBERS = Table("users", USER_COLUMNS, UserRow, newest_first=False)


async def update_user(session: AsyncSession, user_id: UUID, *, name: str, role: Role) -> UserRow:
    row = (
        await session.execute(
            text(
                "UPDATE users SET name = :name, role = :role, updated_at = now() WHERE id = :id"
                f" RETURNING {USER_COLUMNS}"
            ),
            {"id": user_id, "name": name, "role": role},
        )
    ).one()
    return UserRow(**row._mapping)


async def delete_user(session: AsyncSession, user_id: UUID) -> None:
    await session.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})


async def owner_count(session: AsyncSession) -> int:
    count = (await session.execute(text("SELECT count(*) FROM users WHERE role = 'owner'"))).scalar_one()
    return int(count)


async def lock_org(session: AsyncSession, org_id: UUID) -> None:
    """Take the org row's lock that serializes membership changes."""
    # NO KEY UPDATE: conflicts with itself (api mutations are serialized) but not with the
    # KEY SHARE lock a foreign-key check takes, so inserting a member (the auth service accepting
    # an invitation while holding that invitation's row) never waits on it: no lock cycle.
    await session.execute(
        text("SELECT id FROM organizations WHERE id = :org FOR NO KEY UPDATE"), {"org": org_id}
    )


async def user_role(session: AsyncSession, user_id: UUID) -> Role | None:
    role: Role | None = (
        await session.execute(text("SELECT role FROM users WHERE id = :id"), {"id": user_id})
    ).scalar_one_or_none()
    return role
