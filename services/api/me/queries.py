"""SQL of the caller: their user row and organization, read on every authenticated request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.roles import Role


@dataclass(frozen=True)
class CallerRow:
    email: str
    name: str
    role: Role
    email_verified_at: datetime | None
    created_at: datetime
    org_name: str
    org_created_at: datetime
    org_updated_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))  # the driver hands back the text


async def caller(session: AsyncSession, user_id: UUID) -> CallerRow | None:
    """The user and their org, or None when the user no longer exists or is disabled.

    RLS hides other orgs; a user disabled by an operator is refused here even if the Redis
    revocation check failed open.
    """
    row = (
        await session.execute(
            text(
                "SELECT u.email, u.name, u.role, u.email_verified_at, u.created_at,"
                " o.name AS org_name, o.created_at AS org_created_at,"
                " o.updated_at AS org_updated_at"
                " FROM users u JOIN organizations o ON o.id = u.org_id"
                " WHERE u.id = :id AND u.disabled_at IS NULL"
            ),
            {"id": user_id},
        )
    ).one_or_none()
    return None if row is None else CallerRow(**row._mapping)
