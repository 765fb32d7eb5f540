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
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text

from services.auth.metrics import HOUSEKEEPING_DELETED
from services.auth.signups.service import purge_expired_attempts
from services.auth.state import AuthState
from shared.db import tenant_transaction, transaction

logger = logging.getLogger("blockbot.auth.housekeeping")

SPENT_TOKEN_RETENTION_SECONDS = 24 * 3600

_DEAD_SESSION = (
    "(expires_at < now() - make_interval(secs => :keep) OR revoked_at < now() - make_interval(secs => :keep))"
)
_SPENT_TOKEN = (
    "(consumed_at < now() - make_interval(secs => :keep)"
    " OR expires_at < now() - make_interval(secs => :keep))"
)
# Built from the constants above only; every value is a bound parameter.
_DEAD_SESSIONS_OF_ORG = (
    f"SELECT id FROM sessions WHERE org_id = :org AND {_DEAD_SESSION}"  # noqa: S608
    " LIMIT :batch FOR UPDATE SKIP LOCKED"
)
_DELETE_SPENT_TOKENS_OF_ORG = (
    "DELETE FROM one_time_tokens WHERE id IN (SELECT id FROM one_time_tokens"  # noqa: S608
    f" WHERE org_id = :org AND {_SPENT_TOKEN} LIMIT :batch FOR UPDATE SKIP LOCKED)"
)


@dataclass(frozen=True)
class Purged:
    unverified_signups: int = 0
    sessions: int = 0
    retired_tokens: int = 0
    one_time_tokens: int = 0


async def _orgs_with(state: AuthState, table: str, condition: str, keep: int, batch: int) -> list[UUID]:
    async with transaction(state.sessionmaker) as db:
        rows = await db.execute(
            text(f"SELECT DISTINCT org_id FROM {table} WHERE {condition} LIMIT :batch"),  # noqa: S608
            {"keep": keep, "batch": batch},
        )
        return [row.org_id for row in rows]


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_dead_sessions(state: AuthState, *, batch: int = 1000) -> tuple[int, int]:
    """Delete sessions dead for longer than the refresh TTL; returns (sessions, retired tokens)."""
    keep = state.settings.refresh_token_ttl_seconds
    sessions = retired = 0
    while True:
        orgs = await _orgs_with(state, "sessions", _DEAD_SESSION, keep, batch)
        round_sessions = 0
        for org_id in orgs:
            async with tenant_transaction(state.sessionmaker, org_id) as db:
                ids = list(
                    (
                        await db.execute(
                            text(_DEAD_SESSIONS_OF_ORG),
                            {"org": org_id, "keep": keep, "batch": batch},
                        )
                    ).scalars()
                )
                if not ids:
                    continue
                retired += _count(
                    await db.execute(
                        text("DELETE FROM session_retired_tokens WHERE session_id = ANY(:ids)"),
                        {"ids": ids},
                    )
                )
                round_sessions += _count(
                    await db.execute(text("DELETE FROM sessions WHERE id = ANY(:ids)"), {"ids": ids})
                )
        sessions += round_sessions
        if len(orgs) < batch and round_sessions < batch:
            return sessions, retired
        if round_sessions == 0:  # pragma: no cover - rows locked by a concurrent purger
            return sessions, retired


async def purge_spent_tokens(state: AuthState, *, batch: int = 1000) -> int:
    """Delete one-time tokens consumed or expired more than a day ago."""
    keep = SPENT_TOKEN_RETENTION_SECONDS
    deleted = 0
    while True:
        orgs = await _orgs_with(state, "one_time_tokens", _SPENT_TOKEN, keep, batch)
        round_deleted = 0
        for org_id in orgs:
            async with tenant_transaction(state.sessionmaker, org_id) as db:
                round_deleted += _count(
                    await db.execute(
                        text(_DELETE_SPENT_TOKENS_OF_ORG),
                        {"org": org_id, "keep": keep, "batch": batch},
                    )
                )
        deleted += round_deleted
        if (len(orgs) < batch and round_deleted < batch) or round_deleted == 0:
            return deleted


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
