"""SQL of invitations and of the one-time tokens their links carry.

Every statement runs in the request's tenant transaction: RLS limits it to the caller's org.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.tables.queries import Table
from shared.roles import Role
from shared.rows import exists, ids_of

INVITATION_COLUMNS = (
    "id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at,"
    " (expires_at <= now()) AS expired"
)
PENDING = "accepted_at IS NULL AND revoked_at IS NULL"


@dataclass(frozen=True)
class InvitationRow:
    id: UUID
    email: str
    role: Role
    invited_by: UUID | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    expired: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))  # the driver hands back the text


# The org's invitations, newest first.
INVITATIONS = Table("invitations", INVITATION_COLUMNS, InvitationRow, newest_first=True)


async def member_exists(session: AsyncSession, email: str) -> bool:
    """Whether a member of THIS org has the address (case-insensitive)."""
    statement = text("SELECT 1 FROM users WHERE lower(email) = lower(:email)")
    return await exists(session, statement, {"email": email})


async def revoke_expired_pending(session: AsyncSession, email: str) -> list[UUID]:
    """Revoke the address's expired, never-answered invitations; their ids."""
    statement = text(
        f"UPDATE invitations SET revoked_at = now() WHERE lower(email) = lower(:email)"
        f" AND {PENDING} AND expires_at <= now() RETURNING id"
    )
    return await ids_of(session, statement, {"email": email})


async def insert_pending(
    session: AsyncSession, *, org_id: UUID, email: str, role: Role, invited_by: UUID, ttl_seconds: int
) -> InvitationRow | None:
    """A new pending invitation, or None when one is already pending for the address."""
    try:
        async with session.begin_nested():  # the unique index refuses a second pending one
            row = (
                await session.execute(
                    text(
                        "INSERT INTO invitations (org_id, email, role, invited_by, expires_at)"
                        " VALUES (:org, :email, :role, :by, now() + make_interval(secs => :ttl))"
                        f" RETURNING {INVITATION_COLUMNS}"
                    ),
                    {"org": org_id, "email": email, "role": role, "by": invited_by, "ttl": ttl_seconds},
                )
            ).one()
    except IntegrityError:
        return None
    return InvitationRow(**row._mapping)


async def insert_token(
    session: AsyncSession, *, org_id: UUID, invitation_id: UUID, digest: bytes, expires_at: datetime
) -> None:
    """Store the digest of the invitation link's one-time token."""
    await session.execute(
        text(
            "INSERT INTO one_time_tokens (org_id, invitation_id, purpose, token_hash, expires_at)"
            " VALUES (:org, :inv, 'invitation', :hash, :expires)"
        ),
        {"org": org_id, "inv": invitation_id, "hash": digest, "expires": expires_at},
    )


async def spend_tokens(session: AsyncSession, invitation_id: UUID) -> None:
    """Consume the invitation's unspent one-time tokens (its link stops working)."""
    await session.execute(
        text(
            "UPDATE one_time_tokens SET consumed_at = now() WHERE invitation_id = :id AND consumed_at IS NULL"
        ),
        {"id": invitation_id},
    )


async def mark_revoked(session: AsyncSession, invitation_id: UUID) -> None:
    await session.execute(
        text("UPDATE invitations SET revoked_at = now() WHERE id = :id"), {"id": invitation_id}
    )


async def revoke_pending_sent_by(session: AsyncSession, inviter_id: UUID, roles: Sequence[str]) -> list[UUID]:
    """Revoke the pending invitations `inviter_id` sent for these roles; their ids.

    Tokens first, then the invitations: the order the auth service's acceptance locks them in.
    """
    pending = (
        "SELECT id FROM invitations WHERE invited_by = :user AND role = ANY(:roles)"
        " AND accepted_at IS NULL AND revoked_at IS NULL"
    )
    params = {"user": inviter_id, "roles": list(roles)}
    await session.execute(
        text(
            "UPDATE one_time_tokens SET consumed_at = now()"
            f" WHERE consumed_at IS NULL AND invitation_id IN ({pending})"
        ),
        params,
    )
    statement = text(f"UPDATE invitations SET revoked_at = now() WHERE id IN ({pending}) RETURNING id")
    return await ids_of(session, statement, params)
