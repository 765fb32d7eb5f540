"""The one way to revoke sessions, used by the auth service (logout, reuse, password reset)
and the api (member removal).

A revoked session is marked in the database and its `sid` in Redis, so access tokens already
issued for it are refused at once (the api reads the marker on every request). The markers are
written before the caller's transaction commits.
"""

from __future__ import annotations

import logging
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from shared.access_tokens import mark_sessions_revoked
from shared.redis_errors import REDIS_ERRORS, redis_or_503
from shared.sessions import queries
from shared.settings import Settings

logger = logging.getLogger("blockbot.sessions")


async def revoke_sessions(
    db: AsyncSession,
    redis: Redis,
    settings: Settings,
    ids: list[UUID],
    *,
    reason: str,
    redis_required: bool = True,
) -> None:
    """Revoke `ids` (transaction bound to their org) and mark their sids in Redis.

    With `redis_required`, Redis down fails the revocation as a whole (503, retry) instead of
    leaving access tokens alive for their remaining lifetime. Without it the failure is logged
    and the revocation stands: for callers whose later requests are refused anyway (a removed
    member's user row is gone, and every api request reads it).
    """
    if not ids:
        return
    await queries.mark_revoked(db, ids, reason)
    if redis_required:
        with redis_or_503():
            await mark_sessions_revoked(redis, settings, ids)
        return
    try:
        await mark_sessions_revoked(redis, settings, ids)
    except REDIS_ERRORS as error:
        logger.warning("could not set revoked-session markers", extra={"error": repr(error)})


async def revoke_user_sessions(
    db: AsyncSession,
    redis: Redis,
    settings: Settings,
    user_id: UUID,
    *,
    reason: str,
    redis_required: bool = True,
) -> list[UUID]:
    """Revoke every live session of a user (transaction bound to the user's org); their ids."""
    ids = await queries.lock_live_user_sessions(db, user_id)
    await revoke_sessions(db, redis, settings, ids, reason=reason, redis_required=redis_required)
    return ids
