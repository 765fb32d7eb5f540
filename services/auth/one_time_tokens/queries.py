"""SQL of `one_time_tokens`: only SHA-256 digests are stored, never a raw token.

`org_of` and `is_live` are cross-tenant reads (auth_identity_lookup policy); the writes run in
a transaction bound to the token's org.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import exists, one_or_none


@dataclass(frozen=True)
class ConsumedToken:
    id: UUID
    org_id: UUID
    user_id: UUID | None
    invitation_id: UUID | None


async def insert(
    db: AsyncSession,
    *,
    org_id: UUID,
    user_id: UUID | None,
    invitation_id: UUID | None,
    purpose: str,
    digest: bytes,
    ttl_seconds: int,
) -> None:
    """Store a token's digest, valid for `ttl_seconds` from now."""
    await db.execute(
        text(
            "INSERT INTO one_time_tokens (org_id, user_id, invitation_id, purpose, token_hash,"
            " expires_at) VALUES (:org, :user, :inv, :purpose, :hash,"
            " now() + make_interval(secs => :ttl))"
        ),
        {
            "org": org_id,
            "user": user_id,
            "inv": invitation_id,
            "purpose": purpose,
            "hash": digest,
            "ttl": ttl_seconds,
        },
    )


_IS_LIVE = text(
    "SELECT 1 FROM one_time_tokens WHERE token_hash = :hash AND purpose = :p"
    " AND consumed_at IS NULL AND expires_at > now()"
)


async def is_live(db: AsyncSession, *, purpose: str, digest: bytes) -> bool:
    """Whether an unused, unexpired token has this digest."""
    return await exists(db, _IS_LIVE, {"hash": digest, "p": purpose})


async def org_of(db: AsyncSession, *, purpose: str, digest: bytes) -> UUID | None:
    """The org of a token, used or not (what the consuming transaction is bound to)."""
    org_id: UUID | None = (
        await db.execute(
            text("SELECT org_id FROM one_time_tokens WHERE token_hash = :hash AND purpose = :p"),
            {"hash": digest, "p": purpose},
        )
    ).scalar_one_or_none()
    return org_id


_CONSUME = text(
    "UPDATE one_time_tokens SET consumed_at = now()"
    " WHERE token_hash = :hash AND purpose = :p AND consumed_at IS NULL"
    " AND expires_at > now()"
    " RETURNING id, org_id, user_id, invitation_id"
)


async def consume(db: AsyncSession, *, purpose: str, digest: bytes) -> ConsumedToken | None:
    """Mark an unused, unexpired token used in one conditional UPDATE; None when none is."""
    return await one_or_none(db, ConsumedToken, _CONSUME, {"hash": digest, "p": purpose})


async def retire_outstanding(db: AsyncSession, *, user_id: UUID, purposes: list[str]) -> None:
    """Mark every unused token of the user for these purposes used."""
    await db.execute(
        text(
            "UPDATE one_time_tokens SET consumed_at = now()"
            " WHERE user_id = :user AND purpose = ANY(:purposes) AND consumed_at IS NULL"
        ),
        {"user": user_id, "purposes": purposes},
    )
