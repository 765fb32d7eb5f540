"""SQL of the org's second-factor policy."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def set_required(session: AsyncSession, org_id: UUID, required: bool) -> None:
    await session.execute(
        text(
            "UPDATE organizations SET require_second_factor = :required, updated_at = now() WHERE id = :org"
        ),
        {"required": required, "org": org_id},
    )
