"""Hourly housekeeping: drop what no request can use any more.

* expired sign-up attempts (signups.service.purge_expired_attempts);
* sessions dead (revoked or expired) for longer than the refresh-token TTL, with their
  `session_retired_tokens` rows. Until then a dead session's tokens are still recognized (a
  replay is logged as "revoked" rather than "unknown"); afterwards both answers are the same 401;
* one-time tokens consumed or expired more than a day ago.

Each purge runs in batches across every org. A batch of sessions or one-time tokens is one call
of a purge function (migration 0012: SECURITY DEFINER, the auth role's only way to delete
another org's rows, and only dead ones), run outside an explicit transaction, so its row locks
end with that one statement. Rows come from the expiry index in order and rows a request holds
are skipped, never waited for. The batch size adapts to the time a batch takes (`BatchSize`),
so a batch stays short on a loaded server. Several auth processes may run this at once
harmlessly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth.housekeeping import queries
from services.auth.metrics import HOUSEKEEPING_DELETED
from services.auth.signups.service import purge_expired_attempts
from services.auth.state import AuthState

logger = logging.getLogger("blockbot.auth.housekeeping")

SPENT_TOKEN_RETENTION_SECONDS = 24 * 3600
MAX_BATCH_ROWS = 250
BATCH_TARGET_SECONDS = 0.025


@dataclass(frozen=True)
class Purged:
    unverified_signups: int = 0
    sessions: int = 0
    retired_tokens: int = 0
    one_time_tokens: int = 0


@dataclass
class BatchSize:
    """Rows per batch: from a small first batch (its pages may not be cached yet), scaled after
    each batch towards taking `target_seconds`; at most doubled at a time, within
    [`floor`, `ceiling`]."""

    rows: int = 50
    ceiling: int = MAX_BATCH_ROWS
    target_seconds: float = BATCH_TARGET_SECONDS
    floor: int = 10

    def __post_init__(self) -> None:
        self.floor = min(self.floor, self.ceiling)
        self.rows = max(self.floor, min(self.rows, self.ceiling))

    def took(self, seconds: float) -> None:
        scaled = int(self.rows * self.target_seconds / max(seconds, 1e-4))
        self.rows = max(self.floor, min(self.ceiling, 2 * self.rows, scaled))


# A batch: (rows deleted, seconds it held its locks) given the rows it may delete.
Batch = Callable[[int], Awaitable[tuple[int, float]]]


async def _in_batches(batch: Batch, size: BatchSize, seconds: list[float] | None) -> int:
    """Run `batch(rows)` until one deletes fewer rows than asked (the rest, if any, is held by a
    concurrent transaction: the next round takes it); how many rows in all. Each batch's
    duration is appended to `seconds` when given."""
    total = 0
    while True:
        rows = size.rows
        deleted, elapsed = await batch(rows)
        if seconds is not None:
            seconds.append(elapsed)
        total += deleted
        if deleted < rows:
            return total
        size.took(elapsed)


Sessions = async_sessionmaker[AsyncSession]


async def _autocommit(
    sessions: Sessions, purge: Callable[[AsyncSession], Awaitable[tuple[int, float]]]
) -> tuple[int, float]:
    """`purge` on a connection in autocommit: its one statement is its own transaction, which
    commits (releasing its locks) before the answer travels back."""
    async with sessions() as db:
        await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return await purge(db)


async def purge_dead_sessions(
    state: AuthState, *, batch: int = MAX_BATCH_ROWS, seconds: list[float] | None = None
) -> tuple[int, int]:
    """Delete sessions dead for longer than the refresh TTL, at most `batch` a statement;
    returns (sessions, retired tokens)."""
    keep = state.settings.refresh_token_ttl_seconds
    return await purge_sessions(state.sessionmaker, keep_seconds=keep, batch=batch, seconds=seconds)


async def purge_sessions(
    sessions: Sessions, *, keep_seconds: int, batch: int = MAX_BATCH_ROWS, seconds: list[float] | None = None
) -> tuple[int, int]:
    """Delete sessions dead for longer than `keep_seconds`, at most `batch` a statement, each
    batch's duration appended to `seconds`; returns (sessions, retired tokens)."""
    retired = 0

    async def one(rows: int) -> tuple[int, float]:
        nonlocal retired

        async def purge(db: AsyncSession) -> tuple[int, float]:
            nonlocal retired
            purged = await queries.purge_dead_sessions(db, keep_seconds=keep_seconds, limit=rows)
            retired += purged.retired_tokens
            return purged.sessions, purged.seconds

        return await _autocommit(sessions, purge)

    deleted = await _in_batches(one, BatchSize(ceiling=batch), seconds)
    return deleted, retired


async def purge_spent_tokens(
    state: AuthState, *, batch: int = MAX_BATCH_ROWS, seconds: list[float] | None = None
) -> int:
    """Delete one-time tokens consumed or expired more than a day ago, at most `batch` a statement."""

    async def purge(db: AsyncSession, rows: int) -> tuple[int, float]:
        purged = await queries.purge_spent_tokens(db, keep_seconds=SPENT_TOKEN_RETENTION_SECONDS, limit=rows)
        return purged.deleted, purged.seconds

    async def one(rows: int) -> tuple[int, float]:
        return await _autocommit(state.sessionmaker, lambda db: purge(db, rows))

    return await _in_batches(one, BatchSize(ceiling=batch), seconds)


async def purge_stale_signups(
    state: AuthState, *, batch: int = MAX_BATCH_ROWS, seconds: list[float] | None = None
) -> int:
    """Delete expired sign-up attempts (not a tenant table), at most `batch` a transaction."""

    async def one(rows: int) -> tuple[int, float]:
        started = time.perf_counter()
        return await purge_expired_attempts(state, batch=rows), time.perf_counter() - started

    return await _in_batches(one, BatchSize(ceiling=batch), seconds)


async def run_housekeeping(state: AuthState) -> Purged:
    """One pass of every purge; each batch commits on its own."""
    seconds: list[float] = []
    signups = await purge_stale_signups(state, seconds=seconds)
    sessions, retired = await purge_dead_sessions(state, seconds=seconds)
    tokens = await purge_spent_tokens(state, seconds=seconds)
    purged = Purged(signups, sessions, retired, tokens)
    HOUSEKEEPING_DELETED.labels("sessions").inc(sessions)
    HOUSEKEEPING_DELETED.labels("session_retired_tokens").inc(retired)
    HOUSEKEEPING_DELETED.labels("one_time_tokens").inc(tokens)
    if sessions or retired or tokens:
        logger.info(
            "housekeeping purged dead rows",
            extra={
                "sessions": sessions,
                "retired_tokens": retired,
                "one_time_tokens": tokens,
                "batches": len(seconds),
                "longest_batch_ms": round(max(seconds) * 1000, 1),
            },
        )
    return purged
