"""SQL of housekeeping: one bounded batch of dead rows of any org, deleted by the purge functions
of migration 0012 (SECURITY DEFINER, executable by the auth role only).

Each statement is a whole purge batch: run outside an explicit transaction, its row locks end
with it. Every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import one_or_none

# Cutoffs come from the database's clock, like the expiry times they are compared with.
# `seconds`: the server's time from the batch's first row lock (sessions: the function reports
# it; tokens: the statement's start) to the purge's end; the locks end with the statement's
# commit right after.
_SERVER_SECONDS = "extract(epoch FROM clock_timestamp() - statement_timestamp())::float8 AS seconds"
_PURGE_SESSIONS = text(
    "SELECT sessions, retired_tokens, locked_seconds AS seconds FROM housekeeping_purge_sessions("
    "now() - make_interval(secs => :keep), :limit)"
)
_PURGE_ONE_TIME_TOKENS = text(
    f"SELECT deleted, {_SERVER_SECONDS} FROM housekeeping_purge_one_time_tokens("
    "now() - make_interval(secs => :keep), :limit) AS deleted"
)


@dataclass(frozen=True)
class PurgedSessions:
    sessions: int
    retired_tokens: int
    seconds: float


@dataclass(frozen=True)
class PurgedTokens:
    deleted: int
    seconds: float


async def purge_dead_sessions(db: AsyncSession, *, keep_seconds: int, limit: int) -> PurgedSessions:
    """Delete up to `limit` sessions (of any org) revoked or expired more than `keep_seconds`
    ago, with their retired tokens; rows a concurrent transaction holds are skipped."""
    params = {"keep": keep_seconds, "limit": limit}
    purged = await one_or_none(db, PurgedSessions, _PURGE_SESSIONS, params)
    assert purged is not None  # the function returns one row
    return purged


async def purge_spent_tokens(db: AsyncSession, *, keep_seconds: int, limit: int) -> PurgedTokens:
    """Delete up to `limit` one-time tokens (of any org) consumed or expired more than
    `keep_seconds` ago; rows a concurrent transaction holds are skipped."""
    params = {"keep": keep_seconds, "limit": limit}
    purged = await one_or_none(db, PurgedTokens, _PURGE_ONE_TIME_TOKENS, params)
    assert purged is not None  # the function returns one value
    return purged
