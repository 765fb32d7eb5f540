"""SQL of API keys. Management statements run in the request's tenant transaction (RLS limits
them to the caller's org); `authenticate` is the one statement that runs before a tenant is
known, through the `api_key_authenticate` SECURITY DEFINER function (migration 0004), on its
own: it verifies the key, binds its org and reads the org, in one round trip."""

# SQL here is assembled from this module's constant fragments only; values are bound parameters.

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.api.tables.queries import Table
from shared.db import read_in_one_round_trip
from shared.queries import Statement

KEY_COLUMNS = (
    "id, name, public_id, scopes, created_by, created_at, expires_at, last_used_at, revoked_at,"
    " (expires_at IS NOT NULL AND expires_at <= now()) AS expired"
)


@dataclass(frozen=True)
class ApiKeyRow:
    id: UUID
    name: str
    public_id: str
    scopes: list[str]
    created_by: UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    expired: bool


# The org's keys, newest first.
KEYS = Table("api_keys", KEY_COLUMNS, ApiKeyRow, newest_first=True)


@dataclass(frozen=True)
class KeyAuthRow:
    """What verification needs of a key row, and its org; `secret_hash` never leaves the request
    path."""

    id: UUID
    org_id: UUID
    name: str
    scopes: list[str]
    secret_hash: bytes
    expires_at: datetime | None
    revoked_at: datetime | None
    # Whether the statement bound its transaction to the key's org: only a live key with the
    # right hash does, the database's clock deciding expiry. The org is read only then.
    bound: bool
    org_name: str | None
    org_created_at: datetime | None
    org_updated_at: datetime | None

    def __repr__(self) -> str:
        return f"KeyAuthRow(id={self.id!r}, org_id={self.org_id!r})"


async def insert_key(
    session: AsyncSession,
    *,
    org_id: UUID,
    public_id: str,
    secret_hash: bytes,
    name: str,
    scopes: list[str],
    created_by: UUID,
    expires_at: datetime | None,
) -> ApiKeyRow:
    """Store a new key (its hash only)."""
    row = (
        await session.execute(
            text(
                "INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes, created_by,"
                " expires_at) VALUES (:org, :pid, :hash, :name, :scopes, :by, :expires)"
                f" RETURNING {KEY_COLUMNS}"
            ),
            {
                "org": org_id,
                "pid": public_id,
                "hash": secret_hash,
                "name": name,
                "scopes": scopes,
                "by": created_by,
                "expires": expires_at,
            },
        )
    ).one()
    return ApiKeyRow(**row._mapping)


async def count_live(session: AsyncSession) -> int:
    """Keys of the org that still work (neither revoked nor expired)."""
    found = await session.execute(
        text(
            "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now())"
        )
    )
    return int(found.scalar_one())


async def mark_revoked(session: AsyncSession, key_id: UUID, revoked_by: UUID) -> None:
    await session.execute(
        text("UPDATE api_keys SET revoked_at = now(), revoked_by = :by WHERE id = :id"),
        {"id": key_id, "by": revoked_by},
    )


@dataclass(frozen=True)
class RevokedKey:
    id: UUID
    name: str
    scopes: list[str]


async def revoke_live_created_by(
    session: AsyncSession, user_id: UUID, revoked_by: UUID | None
) -> list[RevokedKey]:
    """Revoke the org's working keys that `user_id` created; the keys revoked (`revoked_by`
    None: an operator, who is no user)."""
    rows = await session.execute(
        text(
            "UPDATE api_keys SET revoked_at = now(), revoked_by = :by"
            " WHERE created_by = :user AND revoked_at IS NULL RETURNING id, name, scopes"
        ),
        {"user": user_id, "by": revoked_by},
    )
    return [RevokedKey(**row._mapping) for row in rows]


# The org is read in a LATERAL subquery that refers to the key row, and neither side can be
# flattened (OFFSET 0): PostgreSQL must run the function (and its set_config) before it scans
# organizations, whose RLS then sees the key's org (the ordering of shared.db.tenant_bound).
_AUTHENTICATE = Statement(
    "SELECT k.id, k.org_id, k.name, k.scopes, k.secret_hash, k.expires_at, k.revoked_at, k.bound,"
    " o.name AS org_name, o.created_at AS org_created_at, o.updated_at AS org_updated_at"
    " FROM (SELECT f.*, coalesce(current_setting('app.current_org_id', true) = f.org_id::text,"
    " false) AS bound FROM api_key_authenticate(:pid, :hash) f OFFSET 0) AS k"
    " LEFT JOIN LATERAL (SELECT name, created_at, updated_at FROM organizations"
    " WHERE id = k.org_id AND k.bound OFFSET 0) AS o ON true"
)


async def authenticate(engine: AsyncEngine, public_id: str, secret_hash: bytes) -> KeyAuthRow | None:
    """Look a presented key up by public id and hash, as ONE statement in a transaction of its own
    (no row for a wrong secret, as for an unknown id).

    When it is live, the statement binds the key's org (so RLS shows it
    the org row it reads) and touches `last_used_at` (at most once a minute, committed at once).
    The caller still compares the hash in constant time and reads the reason.
    """
    rows = await read_in_one_round_trip(engine, _AUTHENTICATE, {"pid": public_id, "hash": secret_hash})
    return KeyAuthRow(**rows[0]) if rows else None
