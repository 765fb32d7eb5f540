"""Sessions: refresh-token families with rotation, a reuse grace window and reuse detection.

A session row holds the SHA-256 of its current refresh token and of the one before it. A
refresh of the current token of a live session is ONE statement (`queries.rotate_current`):
the token rotates only if it is still current, so of two concurrent refreshes of one token
exactly one rotates. Any other token is decided under the session's row lock
(SELECT ... FOR UPDATE):

* the previous token within `refresh_reuse_grace_seconds` of the rotation (two tabs, a lost
  response, the loser of a concurrent refresh) gets the CURRENT successor, never a second
  branch. The successor is kept in the row, written by the rotation itself and sealed with a
  key derived from the previous raw token, so the database alone never reveals a usable
  refresh token;
* any other known token (previous after the grace window, or an older one remembered in
  `session_retired_tokens`) is reuse: the whole session
  is revoked, logged, counted and audited, and its `sid` is marked revoked in Redis so the
  api service rejects its access tokens at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.audit import UserEvent, audit_user_event, request_id
from services.auth.factors.level import SessionLevel
from services.auth.identities.service import Identity
from services.auth.metrics import REFRESHES, SESSIONS_CREATED, SESSIONS_REVOKED
from services.auth.sessions import queries
from services.auth.sessions.queries import RefreshRow, RotatedRow, SessionInfo, SessionOwner
from services.auth.state import AuthState, ClientInfo
from shared.access_tokens import b64url_encode
from shared.db import set_tenant, transaction
from shared.errors import NotFound, Unauthorized
from shared.opaque_tokens import decode_token, new_token
from shared.sessions import revocation

logger = logging.getLogger("blockbot.auth.sessions")


INVALID_REFRESH_DETAIL = "The refresh token is invalid, expired or revoked."


@dataclass(frozen=True)
class Refreshed:
    session_id: UUID
    refresh_token: str
    identity: Identity
    level: SessionLevel  # the session's, as it was entered (a refresh never raises it)


class Outcome(StrEnum):
    ROTATED = "rotated"
    GRACE_REPLAY = "grace_replay"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSE_DETECTED = "reuse_detected"


# --- the sealed successor (grace window) ---------------------------------------------------


def _pad(previous_raw: bytes) -> bytes:
    return hmac.new(previous_raw, b"blockbot refresh successor v1", hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _seal(successor: str, previous_raw: bytes) -> bytes:
    """The successor token as the row keeps it: readable only with the previous raw token."""
    successor_raw = decode_token(successor)
    assert successor_raw is not None
    return _xor(successor_raw, _pad(previous_raw))


def _unseal(sealed: bytes | None, previous_raw: bytes) -> str | None:
    if sealed is None or len(sealed) != 32:
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
    level: SessionLevel,
    events: Callable[[UUID], Sequence[UserEvent]] | None = None,
) -> tuple[UUID, str]:
    """Start a family at `level` (transaction bound to `org_id`); returns its id and first
    refresh token. `events` (of the new session's id) are audited in the same statement."""
    token, digest = new_token()
    session_id = uuid4()
    row = queries.NewSession(
        session_id=session_id,
        org_id=org_id,
        user_id=user_id,
        digest=digest,
        ttl_seconds=state.settings.refresh_token_ttl_seconds,
        user_agent=(client.user_agent or "")[:512] or None,
        ip=client.ip,
        amr=list(level.amr),
        acr=level.acr,
        auth_time=level.auth_time,
    )
    if events is None:
        await queries.insert(db, row)
    else:
        await queries.insert_with_events(db, row, events(session_id), request_id=request_id())
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
    successor, successor_hash = new_token()
    rotated = await queries.rotate_current(
        state.sessionmaker,
        digest,
        successor_digest=successor_hash,
        sealed=_seal(successor, raw),
        ip=client.ip,
    )
    if rotated is not None:
        outcome, result, revoked_sid = _rotated(rotated, successor)
    else:
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


def _rotated(row: RotatedRow, successor: str) -> tuple[Outcome, Refreshed | None, UUID | None]:
    if row.org_name is None:  # the user's org is not the session's: nothing to answer with
        return Outcome.INVALID, None, None
    identity = Identity(row.user, row.org_name)
    return Outcome.ROTATED, Refreshed(row.id, successor, identity, _level(row)), None


async def _refresh_locked(
    state: AuthState, raw: bytes, digest: bytes, client: ClientInfo
) -> tuple[Outcome, Refreshed | None, UUID | None]:
    """A token that `rotate_current` did not rotate, decided under the session's row lock."""
    grace = state.settings.refresh_reuse_grace_seconds
    async with transaction(state.sessionmaker) as db:
        found = await queries.family_of(db, digest)
        if found is None:
            return Outcome.INVALID, None, None
        row = await queries.lock_for_refresh(db, found.org_id, found.id, grace_seconds=grace)
        if row is None:
            return Outcome.INVALID, None, None
        if row.revoked_at is not None or row.user_disabled:
            return Outcome.REVOKED, None, None
        if row.expired:
            return Outcome.EXPIRED, None, None

        if row.token_hash == digest:
            # Still current, yet not rotated: its user is gone or not in its org.
            return Outcome.INVALID, None, None

        if row.previous_token_hash == digest and row.in_grace:
            current = _unseal(row.successor_sealed, raw)
            identity = _identity(row)
            if current is None or identity is None:
                return Outcome.INVALID, None, None
            return Outcome.GRACE_REPLAY, Refreshed(row.id, current, identity, _level(row)), None

        # A token of this family that is no longer current: someone replayed it.
        await _revoke_audited(
            db,
            state,
            row,
            reason="refresh_reuse",
            action="session.refresh_reuse_detected",
            client=client,
            details={"reason": "refresh token presented after rotation"},
        )
        SESSIONS_REVOKED.labels("reuse_detected").inc()
        return Outcome.REUSE_DETECTED, None, row.id


def _level(row: RefreshRow | RotatedRow) -> SessionLevel:
    return SessionLevel(tuple(row.amr), row.acr, int(row.auth_time.timestamp()))


def _identity(row: RefreshRow) -> Identity | None:
    """The identity a refresh returns, read with the locked row (as `load_identity` would)."""
    if row.user is None or row.org_name is None:
        return None
    return Identity(row.user, row.org_name)


# --- revocation ----------------------------------------------------------------------------


async def _revoke_audited(
    db: AsyncSession,
    state: AuthState,
    session: SessionOwner,
    *,
    reason: str,
    action: str,
    client: ClientInfo,
    details: dict[str, str] | None = None,
) -> None:
    """Revoke one session (transaction bound to its org; its sid marked in Redis, fail closed) and
    audit it as `action` by its user (the caller counts it in SESSIONS_REVOKED)."""
    await revocation.revoke_sessions(db, state.redis, state.settings, [session.id], reason=reason)
    await audit_user_event(
        db,
        org_id=session.org_id,
        user_id=session.user_id,
        session_id=session.id,
        action=action,
        client=client,
        details=details,
    )


async def revoke_user_sessions(
    db: AsyncSession, state: AuthState, user_id: UUID, *, reason: str
) -> list[UUID]:
    """Revoke every live session of a user (transaction bound to the user's org)."""
    ids = await revocation.revoke_user_sessions(db, state.redis, state.settings, user_id, reason=reason)
    SESSIONS_REVOKED.labels(reason).inc(len(ids))
    return ids


async def revoke_other_sessions(
    db: AsyncSession, state: AuthState, user_id: UUID, keep: UUID, *, reason: str
) -> list[UUID]:
    """Revoke every live session of a user but `keep` (transaction bound to the user's org)."""
    ids = [found.id for found in await queries.live_of_user(db, user_id) if found.id != keep]
    if ids:
        await revocation.revoke_sessions(db, state.redis, state.settings, ids, reason=reason)
        SESSIONS_REVOKED.labels(reason).inc(len(ids))
    return ids


async def logout(state: AuthState, presented: str | None, client: ClientInfo) -> None:
    """Revoke the session of a refresh token (current, or previous within the grace window)."""
    raw = decode_token(presented or "")
    if raw is None:
        return
    digest = hashlib.sha256(raw).digest()
    async with transaction(state.sessionmaker) as db:
        found = await queries.live_by_token(
            db, digest, grace_seconds=state.settings.refresh_reuse_grace_seconds
        )
        if found is None:
            return
        await set_tenant(db, found.org_id)
        await _revoke_audited(db, state, found, reason="logout", action="session.logout", client=client)
    SESSIONS_REVOKED.labels("logout").inc()


async def logout_all(state: AuthState, *, org_id: UUID, user_id: UUID, client: ClientInfo) -> int:
    """Revoke every session of the caller; how many there were."""
    async with transaction(state.sessionmaker, org_id) as db:
        ids = await revoke_user_sessions(db, state, user_id, reason="logout_all")
        await audit_user_event(
            db,
            org_id=org_id,
            user_id=user_id,
            action="session.logout_all",
            client=client,
            details={"sessions": len(ids)},
        )
    return len(ids)


async def list_sessions(state: AuthState, *, org_id: UUID, user_id: UUID) -> list[SessionInfo]:
    """The caller's live sessions, most recently used first."""
    async with transaction(state.sessionmaker, org_id) as db:
        return await queries.live_of_user(db, user_id)


async def revoke_session(
    state: AuthState, *, org_id: UUID, user_id: UUID, session_id: UUID, client: ClientInfo
) -> None:
    """Revoke one of the caller's own sessions; anyone else's id is a 404."""
    async with transaction(state.sessionmaker, org_id) as db:
        row = await queries.lock_own(db, session_id, user_id)
        if row is None:
            raise NotFound("No such session.")
        if row.revoked_at is not None:
            return
        owned = SessionOwner(session_id, org_id, user_id)
        await _revoke_audited(
            db, state, owned, reason="user_revoked", action="session.revoked", client=client
        )
    SESSIONS_REVOKED.labels("user_revoked").inc()
