"""SQL of session revocation; the transaction must be bound to the sessions' org (RLS)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import ids_of


async def lock_live_user_sessions(db: AsyncSession, user_id: UUID) -> list[UUID]:
    """The ids of the user's live (unrevoked, unexpired) sessions, locked FOR UPDATE."""
    statement = text(
        "SELECT id FROM sessions WHERE user_id = :user AND revoked_at IS NULL"
        " AND expires_at > now() FOR UPDATE"
    )
    return await ids_of(db, statement, {"user": user_id})


async def mark_revoked(db: AsyncSession, ids: list[UUID], reason: str) -> None:
    await db.execute(
        text(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = :reason"
            " WHERE id = ANY(:ids) AND revoked_at IS NULL"
        ),
        {"ids": ids, "reason": reason},
    )
