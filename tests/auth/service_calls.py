"""Calling the auth service layer directly (no HTTP): the client a call is made for, the audit
events it writes, the ids a token response names."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from services.auth.state import ClientInfo
from tests.auth.helpers import admin

CLIENT = ClientInfo(ip="198.51.100.9", user_agent="service test")


async def audit_events(dsn: str, actor: UUID) -> list[tuple[str, str, str]]:
    """(action, target type, target id) of the actor's audit events, oldest first."""
    async with admin(dsn) as conn:
        rows = await conn.fetch(
            "SELECT action, target_type, target_id FROM audit_log WHERE actor_user_id = $1 ORDER BY id",
            actor,
        )
    return [(r["action"], r["target_type"], r["target_id"]) for r in rows]


def ids_of(token_response: httpx.Response) -> tuple[UUID, UUID]:
    """The org and user ids of a token response."""
    user: dict[str, Any] = token_response.json()["user"]
    return UUID(user["org_id"]), UUID(user["id"])
