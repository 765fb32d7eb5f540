"""Audit events written by the auth service: a user acting on their own account or sessions.

Every auth event has the same actor (the user the request is about) and the client's address;
only the target differs (the user, or one of their sessions), so there is one helper instead of
a hand-written `record` call per event.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.state import ClientInfo
from shared import audit


async def audit_user_event(
    db: AsyncSession,
    *,
    org_id: UUID,
    user_id: UUID,
    action: str,
    client: ClientInfo,
    session_id: UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record `action` by a user on their account, or on their session `session_id` when given
    (transaction bound to `org_id`)."""
    on_session = session_id is not None
    await audit.record(
        db,
        org_id=org_id,
        action=action,
        actor_user_id=user_id,
        target_type="session" if on_session else "user",
        target_id=session_id if on_session else user_id,
        details=details,
        ip=client.ip,
    )
