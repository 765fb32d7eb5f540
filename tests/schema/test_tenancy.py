"""Row Level Security and role privileges, exercised through the real runtime roles."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from devstack.databases import MigratedDatabase
from tests.schema.helpers import in_tenant, make_org_with_user

TENANT_TABLES_WITH_ORG = ("users", "sessions", "one_time_tokens", "invitations", "audit_log")


async def test_rows_of_org_a_are_invisible_unchangeable_undeletable_for_org_b_and_no_tenant(admin, api_conn):
    org_a, user_a = await make_org_with_user(admin, "alpha")
    org_b, _ = await make_org_with_user(admin, "beta")

    for context in (org_b, None):
        async with api_conn.transaction():
            if context is not None:
                await api_conn.execute("SELECT set_config('app.current_org_id', $1, true)", str(context))
            # Queries that "forget" WHERE org_id: RLS must still hide org A.
            rows = await api_conn.fetch("SELECT id, org_id FROM users")
            assert user_a not in {r["id"] for r in rows}
            assert all(r["org_id"] == context for r in rows)
            assert await api_conn.fetchval("SELECT count(*) FROM users WHERE id = $1", user_a) == 0
            orgs = await api_conn.fetch("SELECT id FROM organizations")
            assert org_a not in {r["id"] for r in orgs}
        assert await in_tenant(api_conn, context, "UPDATE users SET name = 'pwned'") in (
            "UPDATE 0",
            "UPDATE 1",
        )
        assert (
            await in_tenant(api_conn, context, "UPDATE users SET name = 'x' WHERE id = $1", user_a)
            == "UPDATE 0"
        )
        assert await in_tenant(api_conn, context, "DELETE FROM users WHERE id = $1", user_a) == "DELETE 0"
        assert (
            await in_tenant(api_conn, context, "UPDATE organizations SET name = 'x' WHERE id = $1", org_a)
            == "UPDATE 0"
        )

    # Nothing of org A changed.
    row = await admin.fetchrow("SELECT name FROM users WHERE id = $1", user_a)
    assert row is not None and row["name"] == "alpha"
    assert await admin.fetchval("SELECT name FROM organizations WHERE id = $1", org_a) == "alpha"


async def test_own_tenant_rows_are_visible_and_writes_cannot_target_another_tenant(admin, api_conn):
    org_a, user_a = await make_org_with_user(admin, "gamma")
    org_b, _ = await make_org_with_user(admin, "delta")
    async with api_conn.transaction():
        await api_conn.execute("SELECT set_config('app.current_org_id', $1, true)", str(org_a))
        assert await api_conn.fetchval("SELECT count(*) FROM users WHERE id = $1", user_a) == 1
        # WITH CHECK: a row cannot be moved into (or written for) another tenant.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await api_conn.execute("UPDATE users SET org_id = $1 WHERE id = $2", org_b, user_a)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await in_tenant(
            api_conn,
            org_a,
            "INSERT INTO audit_log (org_id, action) VALUES ($1, 'forged')",
            org_b,
        )


async def test_tenant_setting_does_not_outlive_its_transaction(admin, api_conn):
    org_a, _ = await make_org_with_user(admin, "epsilon")
    await in_tenant(api_conn, org_a, "SELECT 1")
    # Same connection, next transaction: the setting was transaction-local, so nothing is visible.
    assert await api_conn.fetchval("SELECT count(*) FROM users") == 0
    assert await api_conn.fetchval("SELECT count(*) FROM organizations") == 0


async def test_every_table_with_org_id_has_forced_rls_with_a_policy(admin):
    rows = await admin.fetch(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'org_id' AND NOT a.attisdropped)
               OR c.relname = 'organizations')
        """
    )
    tables = {r["relname"]: r for r in rows}
    assert set(TENANT_TABLES_WITH_ORG) | {"organizations"} <= set(tables)
    unprotected = [
        name
        for name, r in tables.items()
        if not (r["relrowsecurity"] and r["relforcerowsecurity"] and r["policies"] >= 1)
    ]
    assert unprotected == []


async def test_runtime_roles_are_least_privileged(admin, database: MigratedDatabase):
    for role in (database.roles.auth, database.roles.api):
        attrs = await admin.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1",
            role,
        )
        assert attrs is not None
        assert not any(attrs.values())
        owned = await admin.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1",
            role,
        )
        assert owned == 0
        assert not await admin.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", role, database.roles.owner)
    owners = await admin.fetch(
        "SELECT DISTINCT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    )
    assert {r["rolname"] for r in owners} == {database.roles.owner}


@pytest.mark.parametrize("url_attr", ["api_url", "auth_url"])
async def test_app_roles_cannot_alter_set_role_or_disable_rls(url_attr, database):
    conn = await asyncpg.connect(getattr(database, url_attr))
    forbidden = [
        "ALTER TABLE users ADD COLUMN pwned text",
        "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON users",
        "CREATE TABLE pwned (id int)",
        f'SET ROLE "{database.roles.owner}"',
        "SET row_security = off; SELECT count(*) FROM users",
        "TRUNCATE users",
    ]
    try:
        for sql in forbidden:
            with pytest.raises(asyncpg.PostgresError):
                async with conn.transaction():
                    await conn.execute(sql)
    finally:
        await conn.close()


async def test_auth_role_reads_identities_across_tenants_but_writes_only_in_its_tenant(admin, auth_conn):
    org_a, user_a = await make_org_with_user(admin, "zeta")
    org_b, _ = await make_org_with_user(admin, "eta")
    # Login by email happens before the tenant is known: a cross-tenant read is allowed.
    assert await auth_conn.fetchval("SELECT count(*) FROM users WHERE id = $1", user_a) == 1
    assert (
        await in_tenant(auth_conn, org_b, "UPDATE users SET name = 'x' WHERE id = $1", user_a) == "UPDATE 0"
    )
    assert await in_tenant(auth_conn, None, "DELETE FROM users WHERE id = $1", user_a) == "DELETE 0"
    assert (
        await in_tenant(auth_conn, org_a, "UPDATE users SET name = 'zeta2' WHERE id = $1", user_a)
        == "UPDATE 1"
    )
    # The audit trail is not the auth service's to read.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await auth_conn.fetch("SELECT * FROM audit_log")


async def test_audit_log_is_append_only_even_for_its_owner(admin, database: MigratedDatabase):
    org_a, _ = await make_org_with_user(admin, "theta")
    await admin.execute("INSERT INTO audit_log (org_id, action) VALUES ($1, 'test.event')", org_a)
    async with admin.transaction():
        await admin.execute(f'SET LOCAL ROLE "{database.roles.owner}"')
        await admin.execute("SELECT set_config('app.current_org_id', $1, true)", str(org_a))
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await admin.execute("UPDATE audit_log SET action = 'rewritten'")
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await admin.execute("DELETE FROM audit_log")


async def test_one_time_tokens_store_only_a_32_byte_hash(admin, auth_conn):
    org_a, user_a = await make_org_with_user(admin, "iota")
    with pytest.raises(asyncpg.CheckViolationError):
        await in_tenant(
            auth_conn,
            org_a,
            "INSERT INTO one_time_tokens (org_id, user_id, purpose, token_hash, expires_at)"
            " VALUES ($1, $2, 'magic_link', $3, now())",
            org_a,
            user_a,
            b"raw-token",
        )


async def test_email_is_unique_case_insensitively_across_all_orgs(admin):
    org_a, _ = await make_org_with_user(admin, "kappa")
    org_b, _ = await make_org_with_user(admin, "lambda")
    await admin.execute(
        "INSERT INTO users (org_id, email, name, role) VALUES ($1, 'Same@Example.com', 'a', 'member')",
        org_a,
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        await admin.execute(
            "INSERT INTO users (org_id, email, name, role) VALUES ($1, 'same@example.COM', 'b', 'member')",
            org_b,
        )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("password_hash", "$argon2id$planted"),
        ("email", "planted@example.com"),
        ("email_verified_at", None),
        ("credentials_version", 0),
    ],
)
async def test_api_role_cannot_write_identity_columns(admin, api_conn, column, value):
    """Security review finding 15: the api may update a member's name and role, nothing else."""
    org, user = await make_org_with_user(admin, "grants")
    assert (
        await in_tenant(
            api_conn, org, "UPDATE users SET name = 'Renamed', role = 'admin' WHERE id = $1", user
        )
        == "UPDATE 1"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await in_tenant(api_conn, org, f"UPDATE users SET {column} = $2 WHERE id = $1", user, value)


async def test_api_role_inserts_only_invitation_tokens(admin, api_conn):
    org, user = await make_org_with_user(admin, "tokens")
    invitation = await admin.fetchval(
        "INSERT INTO invitations (org_id, email, role, expires_at)"
        " VALUES ($1, 'invitee@example.com', 'member', now() + interval '1 day') RETURNING id",
        org,
    )
    insert = (
        "INSERT INTO one_time_tokens (org_id, user_id, invitation_id, purpose, token_hash,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, now() + interval '1 hour')"
    )
    for purpose in ("magic_link", "password_reset", "email_verification"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await in_tenant(api_conn, org, insert, org, user, None, purpose, uuid.uuid4().bytes * 2)
    assert (
        await in_tenant(api_conn, org, insert, org, None, invitation, "invitation", uuid.uuid4().bytes * 2)
        == "INSERT 0 1"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await in_tenant(api_conn, org, "UPDATE one_time_tokens SET purpose = 'magic_link'")
