"""Hourly housekeeping: drop what no request can use any more.

* expired sign-up attempts (signups.service.purge_expired_attempts);
* sessions dead (revoked or expired) for longer than the refresh-token TTL, with their
  `session_retired_tokens` rows. Until then a dead session's tokens are still recognized (a
  replay is logged as "revoked" rather than "unknown"); afterwards both answers are the same 401;
* one-time tokens consumed or expired more than a day ago.

It runs as the auth role through Row Level Security, like every request: the candidate orgs are
found with the cross-tenant read the auth role already has (auth_identity_lookup), then each
org's rows are deleted in a transaction bound to that org, so a bug here cannot touch another
tenant's live data. A SECURITY DEFINER function would have needed the owner role (itself under
FORCE RLS) to switch tenants or to bypass RLS, and would be new privileged code for no gain.
Batches keep each transaction short; several auth processes may run this at once harmlessly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.housekeeping import queries
from services.auth.metrics import HOUSEKEEPING_DELETED
from services.auth.signups.service import purge_expired_attempts
from services.auth.state import AuthState
from shared.db import transaction

logger = logging.getLogger("blockbot.auth.housekeeping")

SPENT_TOKEN_RETENTION_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Purged:
    unverified_signups: int = 0
    sessions: int = 0
    retired_tokens: int = 0
    one_time_tokens: int = 0


OrgsToPurge = Callable[[AsyncSession], Awaitable[list[UUID]]]
PurgeOrg = Callable[[AsyncSession, UUID], Awaitable[int]]


async def _purge_by_org(state: AuthState, orgs_to_purge: OrgsToPurge, purge_org: PurgeOrg, batch: int) -> int:
    """Find orgs with dead rows (cross-tenant read), purge each in a transaction bound to it, and
    go round again while a round was full; how many rows `purge_org` deleted in all."""
    deleted = 0
    while True:
        async with transaction(state.sessionmaker) as db:
            orgs = await orgs_to_purge(db)
        round_deleted = 0
        for org_id in orgs:
            async with transaction(state.sessionmaker, org_id) as db:
                round_deleted += await purge_org(db, org_id)
        deleted += round_deleted
        # round_deleted == 0 with full rounds: rows locked by a concurrent purger.
        if (len(orgs) < batch and round_deleted < batch) or round_deleted == 0:
            return deleted


async def purge_dead_sessions(state: AuthState, *, batch: int = 1000) -> tuple[int, int]:
    """Delete sessions dead for longer than the refresh TTL; returns (sessions, retired tokens)."""
    keep = state.settings.refresh_token_ttl_seconds
    retired = 0

    async def purge_org(db: AsyncSession, org_id: UUID) -> int:
        nonlocal retired
        ids = await queries.lock_dead_sessions(db, org_id, keep_seconds=keep, batch=batch)
        if not ids:
            return 0
        sessions, retired_tokens = await queries.delete_sessions(db, ids)
        retired += retired_tokens
        return sessions

    sessions = await _purge_by_org(
        state,
        lambda db: queries.orgs_with_dead_sessions(db, keep_seconds=keep, batch=batch),
        purge_org,
        batch,
    )
    return sessions, retired


async def purge_spent_tokens(state: AuthState, *, batch: int = 1000) -> int:
    """Delete one-time tokens consumed or expired more than a day ago."""
    keep = SPENT_TOKEN_RETENTION_SECONDS
    return await _purge_by_org(
        state,
        lambda db: queries.orgs_with_spent_tokens(db, keep_seconds=keep, batch=batch),
        lambda db, org_id: queries.delete_spent_tokens(db, org_id, keep_seconds=keep, batch=batch),
        batch,
    )


async def run_housekeeping(state: AuthState) -> Purged:
    """One pass of every purge; each part commits on its own."""
    signups = await purge_expired_attempts(state)
    sessions, retired = await purge_dead_sessions(state)
    tokens = await purge_spent_tokens(state)
    purged = Purged(signups, sessions, retired, tokens)
    HOUSEKEEPING_DELETED.labels("sessions").inc(sessions)
    HOUSEKEEPING_DELETED.labels("session_retired_tokens").inc(retired)
    HOUSEKEEPING_DELETED.labels("one_time_tokens").inc(tokens)
    if sessions or retired or tokens:
        logger.info(
            "housekeeping purged dead rows",
            extra={"sessions": sessions, "retired_tokens": retired, "one_time_tokens": tokens},
        )
    return purged
