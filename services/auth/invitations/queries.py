"""SQL of accepting an invitation: the pending invitation and the member it creates.

Every statement runs in a transaction bound to the inviting org.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.roles import Role
from shared.rows import one_or_none


class PendingInvitation(BaseModel):
    """An invitation that can still be accepted (the role is validated into `Role`)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    email: str
    role: Role
    invited_by: UUID | None  # None once the sender's account is deleted


_LOCK_PENDING = text(
    "SELECT id, email, role, invited_by FROM invitations WHERE id = :id"
    " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
    " FOR UPDATE"
)


async def lock_pending(db: AsyncSession, invitation_id: UUID) -> PendingInvitation | None:
    """Lock an invitation that is neither accepted, revoked nor expired; None otherwise."""
    return await one_or_none(db, PendingInvitation, _LOCK_PENDING, {"id": invitation_id})


async def insert_member(
    db: AsyncSession,
    *,
    user_id: UUID,
    org_id: UUID,
    email: str,
    name: str,
    role: Role,
    password_hash: str,
) -> None:
    """The invited user, with their address verified (the invitation link proved it)."""
    await db.execute(
        text(
            "INSERT INTO users (id, org_id, email, name, role, password_hash,"
            " email_verified_at) VALUES (:id, :org, :email, :name, :role, :hash, now())"
        ),
        {
            "id": user_id,
            "org": org_id,
            "email": email,
            "name": name,
            "role": str(role),
            "hash": password_hash,
        },
    )


async def mark_accepted(db: AsyncSession, invitation_id: UUID) -> None:
    """Close the invitation: it cannot be used twice."""
    await db.execute(text("UPDATE invitations SET accepted_at = now() WHERE id = :id"), {"id": invitation_id})
