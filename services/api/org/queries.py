"""SQL of the organization row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class OrgRow:
    id: UUID
    name: str
    created_at: datetime
    updated_at: datetime


async def rename(session: AsyncSession, org_id: UUID, name: str) -> OrgRow:
    row = (
        await session.execute(
            text(
                "UPDATE organizations SET name = :name, updated_at = now() WHERE id = :org"
                " RETURNING id, name, created_at, updated_at"
            ),
            {"name": name, "org": org_id},
        )
    ).one()
    return OrgRow(**row._mapping)
