"""SQL of the caller: their user row and organization, read on every authenticated request
(`GET /me` is this one statement, bound to the caller's org: one PostgreSQL round trip)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import read_in_one_round_trip, tenant_bound
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
    # The org's second-factor policy, read with the caller (no statement of its own).
    org_requires_second_factor: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))  # the driver hands back the text


_CALLER = tenant_bound(
    "SELECT u.email, u.name, u.role, u.email_verified_at, u.created_at,"
    " o.name AS org_name, o.created_at AS org_created_at, o.updated_at AS org_updated_at,"
    " o.require_second_factor AS org_requires_second_factor"
    " FROM users u JOIN organizations o ON o.id = u.org_id"
    " WHERE u.id = :id AND u.disabled_at IS NULL"
)


async def caller(engine: AsyncEngine, org_id: UUID, user_id: UUID) -> CallerRow | None:
    """The user and their org, or None when the user no longer exists or is disabled.

    RLS hides other orgs; a user disabled by an operator is refused here even if the Redis
    revocation check failed open.
    """
    rows = await read_in_one_round_trip(engine, _CALLER, {"id": user_id}, org_id=org_id)
    return CallerRow(**rows[0]) if rows else None
