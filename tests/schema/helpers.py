"""Helpers of the schema tests: an org seeded as the superuser, a statement run in one tenant."""

from __future__ import annotations

import uuid

import asyncpg


async def make_org_with_user(admin: asyncpg.Connection, label: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Insert an org and a member as the superuser (RLS does not apply to superusers)."""
    org = await admin.fetchval("INSERT INTO organizations (name) VALUES ($1) RETURNING id", label)
    user = await admin.fetchval(
        "INSERT INTO users (org_id, email, name, role) VALUES ($1, $2, $3, 'owner') RETURNING id",
        org,
        f"{label}-{uuid.uuid4().hex[:8]}@example.com",
        label,
    )
    return org, user


async def in_tenant(conn: asyncpg.Connection, org: uuid.UUID | None, sql: str, *args: object) -> str:
    """Run one statement in a transaction bound to `org` (or to no tenant); return its status."""
    async with conn.transaction():
        if org is not None:
            await conn.execute("SELECT set_config('app.current_org_id', $1, true)", str(org))
        return await conn.execute(sql, *args)
