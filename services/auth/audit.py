"""Audit events written by the auth service: a user acting on their own account or sessions.

Every auth event has the same actor (the user the request is about) and the client's address;
only the target differs (the user, or one of their sessions), so there is one helper instead of
a hand-written `record` call per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.state import ClientInfo
from shared import audit
from shared.context import request_id_var


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


@dataclass(frozen=True)
class UserEvent:
    """One event by a user on their account or session, as written with another statement
    (services/auth/sessions/queries.py `insert_with_events`): the columns `audit.record` writes."""

    action: str
    target_type: str
    target_id: str
    details_json: str


def user_event(
    action: str, *, user_id: UUID, session_id: UUID | None = None, details: dict[str, Any] | None = None
) -> UserEvent:
    """The event `audit_user_event` would record (actor, org, address and request id are the
    statement's)."""
    on_session = session_id is not None
    return UserEvent(
        action=action,
        target_type="session" if on_session else "user",
        target_id=str(session_id if on_session else user_id),
        details_json=orjson.dumps(details or {}).decode(),
    )


def request_id() -> str | None:
    """The request id every audit event of this request carries."""
    return request_id_var.get()
