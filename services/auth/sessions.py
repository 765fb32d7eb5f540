"""Sessions: refresh-token families with rotation, a reuse grace window and reuse detection.

A session row holds the SHA-256 of its current refresh token and of the one before it. Every
refresh locks the row (SELECT ... FOR UPDATE), so refreshes of one session are serialized:

* the current token rotates: a new token becomes current, the presented one becomes previous;
* the previous token within `refresh_reuse_grace_seconds` of the rotation (two tabs, a lost
  response) gets the CURRENT successor, never a second branch. The raw successor is kept in
  Redis for the grace window only, keyed by the previous token's hash and encrypted with a key
  derived from the previous raw token, so Redis alone never reveals a usable refresh token;
* any other known token (previous after the grace window, or an older one remembered in
  `session_retired_tokens`) is reuse: the whole session
  is revoked, logged, counted and audited, and its `sid` is marked revoked in Redis so the
  api service rejects its access tokens at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.identities import Identity, load_identity
from services.auth.metrics import REFRESHES, SESSIONS_CREATED, SESSIONS_REVOKED
from services.auth.state import AuthState, ClientInfo
from shared import audit
from shared.access_tokens import b64url_encode
from shared.db import set_tenant, tenant_transaction, transaction
from shared.errors import NotFound, Unauthorized
from shared.opaque_tokens import decode_token, new_token
from shared.redis import redis_key
from shared.redis_errors import redis_or_503
from shared.sessions import revocation

logger = logging.getLogger("blockbot.auth.sessions")


INVALID_REFRESH_DETAIL = "The refresh token is invalid, expired or revoked."


@dataclass(frozen=True)
class SessionInfo:
    id: UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    ip: str | None


@dataclass(frozen=True)
class Refreshed:
    session_id: UUID
    refresh_token: str
    identity: Identity


class Outcome(StrEnum):
    ROTATED = "rotated"
    GRACE_REPLAY = "grace_replay"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSE_DETECTED = "reuse_detected"


# --- successor escrow (grace window) ---------------------------------------------------------


def _successor_key(state: AuthState, previous_hash: bytes) -> str:
    return redis_key(state.settings, "auth", "refresh-successor", previous_hash.hex())


def _pad(previous_raw: bytes) -> bytes:
    return hmac.new(previous_raw, b"blockbot refresh successor v1", hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


async def _escrow_successor(
    state: AuthState, previous_raw: bytes, previous_hash: bytes, successor: str
) -> None:
    grace = state.settings.refresh_reuse_grace_seconds
    if grace <= 0:
        return
    successor_raw = decode_token(successor)
    assert successor_raw is not None
    await state.redis.set(
        _successor_key(state, previous_hash), _xor(successor_raw, _pad(previous_raw)), ex=grace
    )


async def _recover_successor(state: AuthState, previous_raw: bytes, previous_hash: bytes) -> str | None:
    sealed = await state.redis.get(_successor_key(state, previous_hash))
    if not isinstance(sealed, bytes) or len(sealed) != 32:
        return None
    return b64url_encode(_xor(sealed, _pad(previous_raw)))


# --- creation ----------------------------------------------------------------------------------


async def create_session(
    db: AsyncSession,
    state: AuthState,
    *,
    org_id: UUID,
    user_id: UUID,
    client: ClientInfo,
    method: str,
) -> tuple[UUID, str]:
    """Start a family (transaction bound to `org_id`); returns its id and first refresh token."""
    token, digest = new_token()
    session_id = uuid4()
    await db.execute(
        text(
            "INSERT INTO sessions (id, org_id, user_id, token_hash, expires_at, user_agent,"
            " ip_address) VALUES (:id, :org, :user, :hash, now() + make_interval(secs => :ttl),"
            " :ua, CAST(:ip AS inet))"
        ),
        {
            "id": session_id,
            "org": org_id,
            "user": user_id,
            "hash": digest,
            "ttl": state.settings.refresh_token_ttl_seconds,
            "ua": (client.user_agent or "")[:512] or None,
            "ip": client.ip,
        },
    )
    SESSIONS_CREATED.labels(method).inc()
    return session_id, token


# --- refresh -----------------------------------------------------------------------------------


async def refresh(state: AuthState, presented: str | None, client: ClientInfo) -> Refreshed:
    """Exchange a refresh token; raise 401 for anything but a valid current or grace token."""
    raw = decode_token(presented or "")
    if raw is None:
        REFRESHES.labels(Outcome.INVALID).inc()
        raise Unauthorized(INVALID_REFRESH_DETAIL)
    digest = hashlib.sha256(raw).digest()
    outcome, result, revoked_sid = await _refresh_locked(state, raw, digest, client)
    REFRESHES.labels(outcome).inc()
    if outcome is Outcome.REUSE_DETECTED:
        logger.warning(
            "refresh token reuse detected; session revoked",
            extra={"session_id": str(revoked_sid), "ip": client.ip},
        )
    if result is None:
        raise Unauthorized(INVALID_REFRESH_DETAIL)
    return result


async def _refresh_locked(
    state: AuthState, raw: bytes, digest: bytes, client: ClientInfo
) -> tuple[Outcome, Refreshed | None, UUID | None]:
    grace = state.settings.refresh_reuse_grace_seconds
    async with transaction(state.sessionmaker) as db:
        found = (
            await db.execute(
                text(
                    "SELECT id, org_id FROM sessions WHERE token_hash = :h"
                    " OR previous_token_hash = :h"
                    " UNION ALL SELECT session_id, org_id FROM session_retired_tokens"
                    " WHERE token_hash = :h LIMIT 1"
                ),
                {"h": digest},
            )
        ).one_or_none()
        if found is None:
            return Outcome.INVALID, None, None
        await set_tenant(db, found.org_id)
        row = (
            await db.execute(
                text(
                    "SELECT id, org_id, user_id, token_hash, previous_token_hash, revoked_at,"
                    " expires_at <= now() AS expired,"
                    " rotated_at IS NOT NULL AND now() - rotated_at"
                    "   < make_interval(secs => :grace) AS in_grace,"
                    " (SELECT disabled_at IS NOT NULL FROM users u WHERE u.id = user_id)"
                    "   AS user_disabled"
                    " FROM sessions WHERE id = :id FOR UPDATE"
                ),
                {"id": found.id, "grace": grace},
            )
        ).one_or_none()
        if row is None:
            return Outcome.INVALID, None, None
        if row.revoked_at is not None or row.user_disabled:
            return Outcome.REVOKED, None, None
        if row.expired:
            return Outcome.EXPIRED, None, None

        if bytes(row.token_hash) == digest:
            successor, successor_hash = new_token()
            if row.previous_token_hash is not None:
                # The hash leaving `previous_token_hash` is remembered: replaying it is reuse.
                await db.execute(
                    text(
                        "INSERT INTO session_retired_tokens (token_hash, session_id, org_id)"
                        " VALUES (:h, :sid, :org) ON CONFLICT DO NOTHING"
                    ),
                    {"h": row.previous_token_hash, "sid": row.id, "org": row.org_id},
                )
            await db.execute(
                text(
                    "UPDATE sessions SET previous_token_hash = token_hash, token_hash = :new,"
                    " generation = generation + 1, rotated_at = now(), last_used_at = now(),"
                    " ip_address = CAST(:ip AS inet) WHERE id = :id"
                ),
                {"new": successor_hash, "id": row.id, "ip": client.ip},
            )
            # Escrow before commit: a concurrent refresh waiting on our row lock will find it.
            with redis_or_503():
                await _escrow_successor(state, raw, digest, successor)
            identity = await load_identity(db, row.user_id)
            if identity is None:
                return Outcome.INVALID, None, None
            return Outcome.ROTATED, Refreshed(row.id, successor, identity), None

        if row.previous_token_hash is not None and bytes(row.previous_token_hash) == digest and row.in_grace:
            with redis_or_503():
                current = await _recover_successor(state, raw, digest)
            if current is None:
                return Outcome.INVALID, None, None
            identity = await load_identity(db, row.user_id)
            if identity is None:
                return Outcome.INVALID, None, None
            return Outcome.GRACE_REPLAY, Refreshed(row.id, current, identity), None

        # A token of this family that is no longer current: someone replayed it.
        await _revoke_rows(db, state, [row.id], reason="refresh_reuse")
        await audit.record(
            db,
            org_id=row.org_id,
            action="session.refresh_reuse_detected",
            actor_user_id=row.user_id,
            target_type="session",
            target_id=row.id,
            details={"reason": "refresh token presented after rotation"},
            ip=client.ip,
        )
        SESSIONS_REVOKED.labels("reuse_detected").inc()
        return Outcome.REUSE_DETECTED, None, row.id


# --- revocation ----------------------------------------------------------------------------


async def _revoke_rows(db: AsyncSession, state: AuthState, ids: list[UUID], *, reason: str) -> None:
    """Revoke sessions (transaction bound to their org) and mark their sids in Redis (fail closed)."""
    await revocation.revoke_sessions(db, state.redis, state.settings, ids, reason=reason)


async def revoke_user_sessions(
    db: AsyncSession, state: AuthState, user_id: UUID, *, reason: str
) -> list[UUID]:
    """Revoke every live session of a user (transaction bound to the user's org)."""
    ids = await revocation.revoke_user_sessions(db, state.redis, state.settings, user_id, reason=reason)
    SESSIONS_REVOKED.labels(reason).inc(len(ids))
    return ids


async def logout(state: AuthState, presented: str | None, client: ClientInfo) -> None:
    """Revoke the session of a refresh token (current, or previous within the grace window)."""
    raw = decode_token(presented or "")
    if raw is None:
        return
    digest = hashlib.sha256(raw).digest()
    async with transaction(state.sessionmaker) as db:
        found = (
            await db.execute(
                text(
                    "SELECT id, org_id, user_id FROM sessions WHERE revoked_at IS NULL AND"
                    " (token_hash = :h OR (previous_token_hash = :h AND rotated_at IS NOT NULL"
                    "  AND now() - rotated_at < make_interval(secs => :grace))) LIMIT 1"
                ),
                {"h": digest, "grace": state.settings.refresh_reuse_grace_seconds},
            )
        ).one_or_none()
        if found is None:
            return
        await set_tenant(db, found.org_id)
        await _revoke_rows(db, state, [found.id], reason="logout")
        await audit.record(
            db,
            org_id=found.org_id,
            action="session.logout",
            actor_user_id=found.user_id,
            target_type="session",
            target_id=found.id,
            ip=client.ip,
        )
    SESSIONS_REVOKED.labels("logout").inc()


async def logout_all(state: AuthState, *, org_id: UUID, user_id: UUID, client: ClientInfo) -> int:
    async with tenant_transaction(state.sessionmaker, org_id) as db:
        ids = await revoke_user_sessions(db, state, user_id, reason="logout_all")
        await audit.record(
            db,
            org_id=org_id,
            action="session.logout_all",
            actor_user_id=user_id,
            target_type="user",
            target_id=user_id,
            details={"sessions": len(ids)},
            ip=client.ip,
        )
    return len(ids)


async def list_sessions(state: AuthState, *, org_id: UUID, user_id: UUID) -> list[SessionInfo]:
    async with tenant_transaction(state.sessionmaker, org_id) as db:
        rows = (
            await db.execute(
                text(
                    "SELECT id, created_at, last_used_at, user_agent, host(ip_address) AS ip"
                    " FROM sessions WHERE user_id = :user AND revoked_at IS NULL"
                    " AND expires_at > now() ORDER BY last_used_at DESC, id"
                ),
                {"user": user_id},
            )
        ).all()
    return [SessionInfo(r.id, r.created_at, r.last_used_at, r.user_agent, r.ip) for r in rows]


async def revoke_session(
    state: AuthState, *, org_id: UUID, user_id: UUID, session_id: UUID, client: ClientInfo
) -> None:
    """Revoke one of the caller's own sessions; anyone else's id is a 404."""
    async with tenant_transaction(state.sessionmaker, org_id) as db:
        row = (
            await db.execute(
                text("SELECT id, revoked_at FROM sessions WHERE id = :id AND user_id = :user FOR UPDATE"),
                {"id": session_id, "user": user_id},
            )
        ).one_or_none()
        if row is None:
            raise NotFound("No such session.")
        if row.revoked_at is not None:
            return
        await _revoke_rows(db, state, [session_id], reason="user_revoked")
        await audit.record(
            db,
            org_id=org_id,
            action="session.revoked",
            actor_user_id=user_id,
            target_type="session",
            target_id=session_id,
            ip=client.ip,
        )
    SESSIONS_REVOKED.labels("user_revoked").inc()
