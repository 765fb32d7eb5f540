"""SQL of the admin command line; it connects as the administrator, which bypasses RLS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.rows import all_of, exists, ids_of, one_or_none


@dataclass(frozen=True)
class OrgRow:
    id: UUID
    name: str
    created_at: datetime
    users: int


@dataclass(frozen=True)
class UserRow:
    id: UUID
    org_id: UUID
    org_name: str
    email: str
    name: str
    role: str
    email_verified_at: datetime | None
    disabled_at: datetime | None
    created_at: datetime
    live_sessions: int


_ORG_SELECT = (
    "SELECT o.id, o.name, o.created_at,"
    " (SELECT count(*) FROM users u WHERE u.org_id = o.id) AS users FROM organizations o"
)
_USER_SELECT = (
    "SELECT u.id, u.org_id, o.name AS org_name, u.email, u.name, u.role, u.email_verified_at,"
    " u.disabled_at, u.created_at,"
    " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL"
    "   AND s.expires_at > now()) AS live_sessions"
    " FROM users u JOIN organizations o ON o.id = u.org_id"
)


async def bypasses_rls(db: AsyncSession) -> bool:
    """True when the connected role sees every tenant (superuser or BYPASSRLS)."""
    return bool(
        (
            await db.execute(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).scalar_one_or_none()
    )


async def list_orgs(db: AsyncSession) -> list[OrgRow]:
    """Every organization with its member count, oldest first."""
    return await all_of(db, OrgRow, text(_ORG_SELECT + " ORDER BY o.created_at, o.id"), {})


async def find_org(db: AsyncSession, org_id: UUID) -> OrgRow | None:
    """One organization with its member count."""
    return await one_or_none(db, OrgRow, text(_ORG_SELECT + " WHERE o.id = :id"), {"id": org_id})


async def list_users(db: AsyncSession, org_id: UUID | None) -> list[UserRow]:
    """Every user (of one org, when given), by org then age."""
    statement = text(
        _USER_SELECT + " WHERE CAST(:org AS uuid) IS NULL OR u.org_id = CAST(:org AS uuid)"
        " ORDER BY o.created_at, u.org_id, u.created_at, u.id"
    )
    return await all_of(db, UserRow, statement, {"org": org_id})


async def find_user(db: AsyncSession, *, user_id: UUID | None, email: str | None) -> UserRow | None:
    """One user by id or by email (case-insensitive)."""
    statement = text(_USER_SELECT + " WHERE u.id = :id OR lower(u.email) = lower(:email)")
    return await one_or_none(db, UserRow, statement, {"id": user_id, "email": email})


async def lock_user(db: AsyncSession, user_id: UUID) -> None:
    """Lock the user row: conflicts with the share lock the auth service takes to start a session."""
    await db.execute(text("SELECT 1 FROM users WHERE id = :id FOR UPDATE"), {"id": user_id})


async def insert_org_with_owner(
    db: AsyncSession,
    *,
    org_id: UUID,
    org_name: str,
    user_id: UUID,
    email: str,
    name: str,
    password_hash: str,
) -> None:
    """Create the org and its verified owner; a taken email raises IntegrityError."""
    await db.execute(
        text("INSERT INTO organizations (id, name) VALUES (:id, :name)"),
        {"id": org_id, "name": org_name},
    )
    await db.execute(
        text(
            "INSERT INTO users (id, org_id, email, name, role, password_hash, email_verified_at)"
            " VALUES (:id, :org, :email, :name, 'owner', :hash, now())"
        ),
        {"id": user_id, "org": org_id, "email": email, "name": name, "hash": password_hash},
    )


async def pending_signup_count(db: AsyncSession, email: str) -> int:
    """How many live sign-up attempts the address has (it has no account yet)."""
    statement = text(
        "SELECT count(*) FROM signup_attempts WHERE email = lower(:email) AND expires_at > now()"
    )
    return int((await db.execute(statement, {"email": email})).scalar_one())


async def drop_signups(db: AsyncSession, email: str) -> None:
    await db.execute(text("DELETE FROM signup_attempts WHERE email = lower(:email)"), {"email": email})


async def mark_email_verified(db: AsyncSession, user_id: UUID) -> bool:
    """Set `email_verified_at` and spend the pending verification links; False if already set."""
    verify = text(
        "UPDATE users SET email_verified_at = now(), updated_at = now()"
        " WHERE id = :id AND email_verified_at IS NULL RETURNING id"
    )
    changed = await exists(db, verify, {"id": user_id})
    await db.execute(
        text(
            "UPDATE one_time_tokens SET consumed_at = now() WHERE user_id = :id"
            " AND purpose = 'email_verification' AND consumed_at IS NULL"
        ),
        {"id": user_id},
    )
    return changed


async def set_disabled(db: AsyncSession, user_id: UUID, *, disabled: bool) -> bool:
    """Disable (now) or re-enable a user; False when it already was in that state."""
    statement = text(
        "UPDATE users SET disabled_at = CASE WHEN :disabled THEN now() END, updated_at = now()"
        " WHERE id = :id AND (disabled_at IS NOT NULL) <> :disabled RETURNING id"
    )
    return await exists(db, statement, {"id": user_id, "disabled": disabled})


async def revoke_sessions(db: AsyncSession, user_id: UUID, *, reason: str) -> list[UUID]:
    """Revoke every not yet revoked session of the user; their ids (for the Redis markers)."""
    statement = text(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = :reason"
        " WHERE user_id = :id AND revoked_at IS NULL RETURNING id"
    )
    return await ids_of(db, statement, {"id": user_id, "reason": reason})


async def public_table_count(db: AsyncSession) -> int:
    """Tables in the `public` schema: a restore target must have none."""
    count = (
        await db.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    ).scalar_one()
    return int(count)


async def recently_revoked_sessions(db: AsyncSession, seconds: int) -> list[UUID]:
    """Sessions revoked in the last `seconds` (their access tokens may still be unexpired)."""
    statement = text("SELECT id FROM sessions WHERE revoked_at > now() - make_interval(secs => :s)")
    return await ids_of(db, statement, {"s": seconds})


@dataclass(frozen=True)
class SchemaItem:
    """One object of the database's own schemas, as `kind`, qualified `name` and a canonical
    text of everything that decides what it does (RLS flags, policy expressions, function
    bodies and attributes, owners, grants, triggers, rules, defaults, constraints)."""

    kind: str
    name: str
    definition: str


# Every object outside the system schemas. ACLs are sorted so grant order does not matter.
_SYSTEM = "('pg_catalog', 'information_schema', 'pg_toast')"
_OWN_NAMESPACES = (
    f"n.nspname NOT IN {_SYSTEM} AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    " AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)


def _acl(column: str) -> str:
    return f"coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest({column}) x), '')"


_SCHEMA_ITEMS = text(
    f"""
    SELECT 'schema'::text AS kind, n.nspname::text AS name,
           concat_ws(' ', pg_get_userbyid(n.nspowner), {_acl("n.nspacl")}) AS definition
      FROM pg_namespace n WHERE {_OWN_NAMESPACES}
    UNION ALL
    SELECT 'relation', n.nspname || '.' || c.relname,
           concat_ws(' ', c.relkind, 'rls=' || c.relrowsecurity, 'forced=' || c.relforcerowsecurity,
                     pg_get_userbyid(c.relowner), {_acl("c.relacl")},
                     CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                     CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_OWN_NAMESPACES}
    UNION ALL
    SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname,
           concat_ws(' ', format_type(a.atttypid, a.atttypmod), 'not_null=' || a.attnotnull,
                     pg_get_expr(d.adbin, d.adrelid), {_acl("a.attacl")})
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND {_OWN_NAMESPACES}
    UNION ALL
    -- Keyed by definition too: a table may hold two constraints of one name (NOT NULL and another).
    SELECT 'constraint',
           n.nspname || '.' || c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid), ''
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_OWN_NAMESPACES}
    UNION ALL
    SELECT 'policy', p.schemaname || '.' || p.tablename || '.' || p.policyname,
           concat_ws(' ', p.permissive, p.roles::text, p.cmd, 'using=' || p.qual, 'check=' || p.with_check)
      FROM pg_policies p
    UNION ALL
    SELECT 'function',
           n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           concat_ws(' ',
           CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prokind::text END,
                     'definer=' || p.prosecdef, pg_get_userbyid(p.proowner), {_acl("p.proacl")})
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_OWN_NAMESPACES}
    UNION ALL
    SELECT 'trigger', n.nspname || '.' || c.relname || '.' || t.tgname,
           pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND {_OWN_NAMESPACES}
    UNION ALL
    SELECT 'rule', r.schemaname || '.' || r.tablename || '.' || r.rulename, r.definition
      FROM pg_rules r WHERE r.schemaname NOT IN {_SYSTEM}
    UNION ALL
    SELECT 'event trigger', e.evtname, concat_ws(' ', e.evtevent, e.evtfoid::regproc::text, e.evtenabled)
      FROM pg_event_trigger e
    UNION ALL
    SELECT 'extension', x.extname, x.extversion FROM pg_extension x
    UNION ALL
    SELECT 'type', n.nspname || '.' || t.typname, concat_ws(' ', t.typtype, pg_get_userbyid(t.typowner))
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE {_OWN_NAMESPACES} AND t.typrelid = 0 AND t.typelem = 0
    ORDER BY 1, 2
    """
)


async def schema_items(db: AsyncSession) -> list[SchemaItem]:
    """What the database's own objects are and do (the catalog read with pg_catalog first, so
    nothing a restored dump defined can stand in for a catalog function)."""
    await db.execute(text("SET LOCAL search_path = pg_catalog"))
    return await all_of(db, SchemaItem, _SCHEMA_ITEMS, {})


async def create_database(conn: AsyncConnection, name: str) -> None:
    """An empty database (outside a transaction); `name` is generated, never user input."""
    await conn.execute(text(f'CREATE DATABASE "{name}"'))


async def drop_database(conn: AsyncConnection, name: str) -> None:
    await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def revoke_api_keys_created_by(db: AsyncSession, user_id: UUID) -> list[UUID]:
    """Revoke the working API keys `user_id` created (by an operator: no `revoked_by` user); the
    ids revoked."""
    statement = text(
        "UPDATE api_keys SET revoked_at = now(), revoked_by = NULL"
        " WHERE created_by = :user AND revoked_at IS NULL RETURNING id"
    )
    return await ids_of(db, statement, {"user": user_id})
