"""SQL of `sessions` and `session_retired_tokens` (revocation itself is shared/sessions).

`rotate_current` is a refresh in one statement: it finds the session by its current token
(cross-tenant read, auth_identity_lookup policy), binds the tenant and rotates. `family_of` and
`live_by_token` are cross-tenant reads that learn the org a refresh or logout transaction is
then bound to; everything else runs bound to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth.audit import UserEvent
from services.auth.identities.queries import UserRecord
from shared.db import execute_alone, tenant_bound
from shared.queries import TENANT_PARAM
from shared.rows import all_of, one_or_none


@dataclass(frozen=True)
class SessionRef:
    """Which session (and org) a presented token belongs to."""

    id: UUID
    org_id: UUID


@dataclass(frozen=True)
class SessionOwner:
    """A session with its org and user."""

    id: UUID
    org_id: UUID
    user_id: UUID


@dataclass(frozen=True)
class RefreshRow(SessionOwner):
    """A session locked for a refresh, with what the refresh rules decide on."""

    token_hash: bytes
    previous_token_hash: bytes | None
    successor_sealed: bytes | None  # the successor of the last rotation, sealed (service.py)
    revoked_at: datetime | None
    expired: bool
    in_grace: bool  # rotated less than the grace window ago
    user_disabled: bool | None  # None: the user row is gone
    user: UserRecord | None  # None: the user row is gone
    org_name: str | None  # None: the user's org row is not visible (or the user is gone)
    amr: list[str]
    acr: str
    auth_time: datetime

    def __post_init__(self) -> None:
        # The driver may hand back bytea as memoryview; the rules compare bytes.
        object.__setattr__(self, "token_hash", bytes(self.token_hash))
        if self.previous_token_hash is not None:
            object.__setattr__(self, "previous_token_hash", bytes(self.previous_token_hash))
        if self.successor_sealed is not None:
            object.__setattr__(self, "successor_sealed", bytes(self.successor_sealed))


@dataclass(frozen=True)
class RotatedRow:
    """A session just rotated by `rotate_current`, with what the refresh returns."""

    id: UUID
    user: UserRecord
    org_name: str | None  # None: the user's org row is not visible
    amr: list[str]
    acr: str
    auth_time: datetime


@dataclass(frozen=True)
class SessionInfo:
    id: UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    ip: str | None


@dataclass(frozen=True)
class OwnSession:
    id: UUID
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewSession:
    """A new session whose current refresh token has `digest`, entered at level (amr, acr)."""

    session_id: UUID
    org_id: UUID
    user_id: UUID
    digest: bytes
    ttl_seconds: int
    user_agent: str | None
    ip: str | None
    amr: list[str]
    acr: str
    auth_time: int

    def params(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "org": self.org_id,
            "user": self.user_id,
            "hash": self.digest,
            "ttl": self.ttl_seconds,
            "ua": self.user_agent,
            "ip": self.ip,
            "amr": self.amr,
            "acr": self.acr,
            "auth_time": self.auth_time,
        }


_INSERT = (
    "INSERT INTO sessions (id, org_id, user_id, token_hash, expires_at, user_agent,"
    " ip_address, amr, acr, auth_time) VALUES (:id, :org, :user, :hash,"
    " now() + make_interval(secs => :ttl), :ua, CAST(:ip AS inet), :amr, :acr,"
    " to_timestamp(:auth_time))"
)


async def insert(db: AsyncSession, session: NewSession) -> None:
    """Insert the new session."""
    await db.execute(text(_INSERT), session.params())


# The session and its audit events in one statement: the events are written only with the
# session (they read its row), in the order given (the ordinality orders the inserts, and so the
# events' ids).
_INSERT_WITH_EVENTS = text(
    f"WITH new_session AS ({_INSERT} RETURNING org_id, user_id)"
    " INSERT INTO audit_log (org_id, actor_user_id, action, target_type, target_id, details,"
    " request_id, ip_address)"
    " SELECT s.org_id, s.user_id, e.action, e.target_type, e.target_id, CAST(e.details AS jsonb),"
    " :rid, CAST(:ip AS inet)"
    " FROM new_session AS s CROSS JOIN unnest(CAST(:actions AS text[]), CAST(:ttypes AS text[]),"
    " CAST(:tids AS text[]), CAST(:details AS text[])) WITH ORDINALITY"
    " AS e(action, target_type, target_id, details, n)"
    " ORDER BY e.n"
)


async def insert_with_events(
    db: AsyncSession, session: NewSession, events: Sequence[UserEvent], *, request_id: str | None
) -> None:
    """`insert`, and the user's audit `events` (by the user, from the session's address) with it:
    one round trip."""
    await db.execute(
        _INSERT_WITH_EVENTS,
        {
            **session.params(),
            "actions": [e.action for e in events],
            "ttypes": [e.target_type for e in events],
            "tids": [e.target_id for e in events],
            "details": [e.details_json for e in events],
            "rid": request_id,
        },
    )


_FAMILY_OF = text(
    "SELECT id, org_id FROM sessions WHERE token_hash = :h"
    " OR previous_token_hash = :h"
    " UNION ALL SELECT session_id, org_id FROM session_retired_tokens"
    " WHERE token_hash = :h LIMIT 1"
)


async def family_of(db: AsyncSession, digest: bytes) -> SessionRef | None:
    """The session a refresh token has ever belonged to: current, previous or retired."""
    return await one_or_none(db, SessionRef, _FAMILY_OF, {"h": digest})


# The columns of a `UserRecord`, read as `u_<name>` next to the session's own.
USER_COLUMNS = tuple(UserRecord.model_fields)

# One statement binds the transaction to the session's org (`tenant_bound`: the binding stays in
# effect for the rest of the transaction), locks the session row (FOR UPDATE OF s: refreshes of
# one session run one at a time; the user and org rows are only read) and reads what a refresh
# returns: its user and org, NULL when the user row is gone.
_LOCK_FOR_REFRESH = tenant_bound(
    "SELECT s.id, s.org_id, s.user_id, s.token_hash, s.previous_token_hash, s.successor_sealed,"
    " s.revoked_at,"
    " s.expires_at <= now() AS expired,"
    " s.rotated_at IS NOT NULL AND now() - s.rotated_at"
    "   < make_interval(secs => :grace) AS in_grace,"
    " CASE WHEN u.id IS NOT NULL THEN u.disabled_at IS NOT NULL END AS user_disabled,"
    f" {', '.join(f'u.{c} AS u_{c}' for c in USER_COLUMNS)}, o.name AS org_name,"
    " s.amr, s.acr, s.auth_time"
    " FROM sessions s LEFT JOIN users u ON u.id = s.user_id"
    " LEFT JOIN organizations o ON o.id = u.org_id"
    " WHERE s.id = :id FOR UPDATE OF s"
)


def _refresh_row(**columns: Any) -> RefreshRow:
    user = {c: columns.pop(f"u_{c}") for c in USER_COLUMNS}
    org_name = columns.pop("org_name")
    record = None if user["id"] is None else UserRecord(**user)
    return RefreshRow(**columns, user=record, org_name=None if org_name is None else str(org_name))


async def lock_for_refresh(
    db: AsyncSession, org_id: UUID, session_id: UUID, *, grace_seconds: int
) -> RefreshRow | None:
    """Bind the transaction to `org_id`, lock a session and read its state, user and org (one
    statement)."""
    bound = {"id": session_id, "grace": grace_seconds, TENANT_PARAM: str(org_id)}
    rows = (await db.execute(_LOCK_FOR_REFRESH.clause, bound)).mappings().all()
    return _refresh_row(**rows[0]) if rows else None


# A refresh of a live session's current token, as ONE statement in an implicit transaction of
# its own (no BEGIN, no COMMIT), run in this order:
# 1. `found`: the session whose current token is :h (cross-tenant read), with the hash that
#    leaves `previous_token_hash`;
# 2. `bind`: the transaction is bound to its org. The rotation and the reads that need the
#    tenant are only referenced inside the LATERAL subquery that depends on the binding row
#    (OFFSET 0: neither side is flattened), and a data-modifying CTE runs when its rows are
#    first read or at the end of the statement: either way after the binding, which Row Level
#    Security then sees (were it not so, RLS would hide every row: it fails closed);
# 3. `rotated`: the session rotates if its token is STILL :h (a concurrent refresh that rotated
#    it first leaves this one nothing to update) and it is unrevoked, unexpired and its user
#    is enabled and in its org; the successor is kept sealed in the row for the grace window;
# 4. `retired`: the hash leaving `previous_token_hash` is remembered (replaying it is reuse).
# No row: the token is not the current one of a live session; `service.refresh` then decides
# under the session's row lock (grace replay, reuse, revoked, expired).
_ROTATE_CURRENT = text(
    "WITH found AS MATERIALIZED ("
    " SELECT id, org_id, previous_token_hash FROM sessions WHERE token_hash = :h),"
    " rotated AS ("
    " UPDATE sessions s SET previous_token_hash = s.token_hash, token_hash = :new,"
    " successor_sealed = :sealed, generation = s.generation + 1, rotated_at = now(),"
    " last_used_at = now(), ip_address = CAST(:ip AS inet)"
    " FROM found f"
    " WHERE s.id = f.id AND s.token_hash = :h AND s.revoked_at IS NULL AND s.expires_at > now()"
    # The user by its primary key, a subquery of its own (OFFSET 0: never flattened into a
    # join): as a join, the planner may read the user through the tenant's org index, every
    # user of the org, since it cannot estimate the tenant bound at run time.
    " AND (SELECT u.disabled_at IS NULL FROM users u"
    "  WHERE u.id = s.user_id AND u.org_id = s.org_id OFFSET 0)"
    " RETURNING s.id, s.org_id, s.user_id, f.previous_token_hash AS retiring,"
    " s.amr, s.acr, s.auth_time),"
    " retired AS ("
    " INSERT INTO session_retired_tokens (token_hash, session_id, org_id)"
    " SELECT retiring, id, org_id FROM rotated WHERE retiring IS NOT NULL ON CONFLICT DO NOTHING)"
    " SELECT q.* FROM (SELECT set_config('app.current_org_id',"
    " coalesce((SELECT org_id::text FROM found), ''), true) AS tenant OFFSET 0) AS bind"
    " CROSS JOIN LATERAL (SELECT r.id, r.amr, r.acr, r.auth_time,"
    f" {', '.join(f'u.{c} AS u_{c}' for c in USER_COLUMNS)}, o.name AS org_name"
    " FROM rotated r JOIN users u ON u.id = r.user_id"
    " LEFT JOIN organizations o ON o.id = u.org_id"
    " WHERE bind.tenant IS NOT NULL OFFSET 0) AS q"
)


async def rotate_current(
    sessionmaker: async_sessionmaker[AsyncSession],
    digest: bytes,
    *,
    successor_digest: bytes,
    sealed: bytes,
    ip: str | None,
) -> RotatedRow | None:
    """Rotate the live session whose CURRENT token has `digest` (one statement, one round trip);
    None when there is none (any other token, or a session that is revoked, expired or whose
    user is disabled)."""
    rows = await execute_alone(
        sessionmaker,
        _ROTATE_CURRENT,
        {"h": digest, "new": successor_digest, "sealed": sealed, "ip": ip},
    )
    if not rows:
        return None
    columns = dict(rows[0])
    user = UserRecord(**{c: columns.pop(f"u_{c}") for c in USER_COLUMNS})
    org_name = columns.pop("org_name")
    return RotatedRow(**columns, user=user, org_name=None if org_name is None else str(org_name))


_LIVE_BY_TOKEN = text(
    "SELECT id, org_id, user_id FROM sessions WHERE revoked_at IS NULL AND"
    " (token_hash = :h OR (previous_token_hash = :h AND rotated_at IS NOT NULL"
    "  AND now() - rotated_at < make_interval(secs => :grace))) LIMIT 1"
)


async def live_by_token(db: AsyncSession, digest: bytes, *, grace_seconds: int) -> SessionOwner | None:
    """The live session whose current token, or previous one within the grace window, has `digest`."""
    return await one_or_none(db, SessionOwner, _LIVE_BY_TOKEN, {"h": digest, "grace": grace_seconds})


_LIVE_OF_USER = text(
    "SELECT id, created_at, last_used_at, user_agent, host(ip_address) AS ip"
    " FROM sessions WHERE user_id = :user AND revoked_at IS NULL"
    " AND expires_at > now() ORDER BY last_used_at DESC, id"
)


async def live_of_user(db: AsyncSession, user_id: UUID) -> list[SessionInfo]:
    """A user's unrevoked, unexpired sessions, most recently used first."""
    return await all_of(db, SessionInfo, _LIVE_OF_USER, {"user": user_id})


_LOCK_OWN = text("SELECT id, revoked_at FROM sessions WHERE id = :id AND user_id = :user FOR UPDATE")


async def lock_own(db: AsyncSession, session_id: UUID, user_id: UUID) -> OwnSession | None:
    """Lock one session of this user; None when it is not theirs (or does not exist)."""
    return await one_or_none(db, OwnSession, _LOCK_OWN, {"id": session_id, "user": user_id})


_REAUTHENTICATED = text(
    "UPDATE sessions SET auth_time = now(), last_used_at = now() WHERE id = :id AND user_id = :user"
    " AND revoked_at IS NULL RETURNING amr, acr, auth_time"
)


@dataclass(frozen=True)
class LevelRow:
    amr: list[str]
    acr: str
    auth_time: datetime


async def mark_reauthenticated(db: AsyncSession, session_id: UUID, user_id: UUID) -> LevelRow | None:
    """Record that the user of a live session proved it again now; its level, None if revoked."""
    return await one_or_none(db, LevelRow, _REAUTHENTICATED, {"id": session_id, "user": user_id})
