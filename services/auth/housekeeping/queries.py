"""SQL of housekeeping: finding orgs with dead rows (a cross-tenant read the auth role has), then
deleting one org's dead rows in a transaction bound to that org.

Statements are assembled from this module's constant fragments only; every value is a bound
parameter.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import ids_of

# Rows are kept `:keep` seconds past their death.
_DEAD_SESSION = (
    "(expires_at < now() - make_interval(secs => :keep) OR revoked_at < now() - make_interval(secs => :keep))"
)
_SPENT_TOKEN = (
    "(consumed_at < now() - make_interval(secs => :keep)"
    " OR expires_at < now() - make_interval(secs => :keep))"
)
_ORGS_WITH_DEAD_SESSIONS = f"SELECT DISTINCT org_id FROM sessions WHERE {_DEAD_SESSION} LIMIT :batch"
_ORGS_WITH_SPENT_TOKENS = f"SELECT DISTINCT org_id FROM one_time_tokens WHERE {_SPENT_TOKEN} LIMIT :batch"
_DEAD_SESSIONS_OF_ORG = (
    f"SELECT id FROM sessions WHERE org_id = :org AND {_DEAD_SESSION} LIMIT :batch FOR UPDATE SKIP LOCKED"
)
_DELETE_SPENT_TOKENS_OF_ORG = (
    "DELETE FROM one_time_tokens WHERE id IN (SELECT id FROM one_time_tokens"
    f" WHERE org_id = :org AND {_SPENT_TOKEN} LIMIT :batch FOR UPDATE SKIP LOCKED)"
)


def _count(result: object) -> int:
    # Only DML results carry a row count; the typed Result of AsyncSession.execute does not say so.
    return int(getattr(result, "rowcount", 0) or 0)


async def orgs_with_dead_sessions(db: AsyncSession, *, keep_seconds: int, batch: int) -> list[UUID]:
    """Up to `batch` orgs with sessions dead for longer than `keep_seconds`."""
    params = {"keep": keep_seconds, "batch": batch}
    return await ids_of(db, text(_ORGS_WITH_DEAD_SESSIONS), params, column="org_id")


async def orgs_with_spent_tokens(db: AsyncSession, *, keep_seconds: int, batch: int) -> list[UUID]:
    """Up to `batch` orgs with one-time tokens spent for longer than `keep_seconds`."""
    params = {"keep": keep_seconds, "batch": batch}
    return await ids_of(db, text(_ORGS_WITH_SPENT_TOKENS), params, column="org_id")


async def lock_dead_sessions(db: AsyncSession, org_id: UUID, *, keep_seconds: int, batch: int) -> list[UUID]:
    """Lock up to `batch` of the org's dead sessions not locked by a concurrent purger."""
    params = {"org": org_id, "keep": keep_seconds, "batch": batch}
    return await ids_of(db, text(_DEAD_SESSIONS_OF_ORG), params)


async def delete_sessions(db: AsyncSession, ids: list[UUID]) -> tuple[int, int]:
    """Delete sessions with their retired tokens; how many of each."""
    retired = await db.execute(
        text("DELETE FROM session_retired_tokens WHERE session_id = ANY(:ids)"), {"ids": ids}
    )
    sessions = await db.execute(text("DELETE FROM sessions WHERE id = ANY(:ids)"), {"ids": ids})
    return _count(sessions), _count(retired)


async def delete_spent_tokens(db: AsyncSession, org_id: UUID, *, keep_seconds: int, batch: int) -> int:
    """Delete up to `batch` of the org's spent one-time tokens; how many."""
    result = await db.execute(
        text(_DELETE_SPENT_TOKENS_OF_ORG), {"org": org_id, "keep": keep_seconds, "batch": batch}
    )
    return _count(result)
