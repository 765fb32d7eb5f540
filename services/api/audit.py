"""Audit events written by the api: the caller and its address, in the request's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.principal import Principal
from shared import audit as shared_audit


async def record(
    session: AsyncSession,
    actor: Principal,
    action: str,
    *,
    target_type: str,
    target_id: UUID | str,
    details: dict[str, Any] | None = None,
) -> None:
    """Insert one event for the actor's org; details must never hold a secret."""
    await shared_audit.record(
        session,
        org_id=actor.org_id,
        action=action,
        actor_user_id=actor.user_id,
        target_type=target_type,
        target_id=target_id,
        details=details,
        ip=actor.ip,
    )


async def record_invitations_revoked(
    session: AsyncSession, actor: Principal, invitation_ids: Iterable[UUID], reason: str
) -> None:
    """One `invitation.revoked` event per invitation revoked as a side effect, saying why."""
    for invitation_id in invitation_ids:
        await record(
            session,
            actor,
            "invitation.revoked",
            target_type="invitation",
            target_id=invitation_id,
            details={"reason": reason},
        )
