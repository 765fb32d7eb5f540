"""The api_keys table through the real runtime roles: RLS forced, least privilege, and the one
SECURITY DEFINER door (`api_key_authenticate`) that verifies a key before the tenant is known."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from devstack.databases import MigratedDatabase
from shared.api_keys import generate_key, secret_hash
from tests.schema.helpers import in_tenant, make_org_with_user

HASH_KEY = b"h" * 32


async def insert_key(
    admin: asyncpg.Connection, org: uuid.UUID, user: uuid.UUID, *, expires: str | None = None
) -> tuple[uuid.UUID, str, str]:
    """A key row as the api would create it; returns (id, public id, secret)."""
    new = generate_key("test", HASH_KEY)
    key_id = await admin.fetchval(
        "INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes, created_by, expires_at)"
        " VALUES ($1, $2, $3, 'bot', ARRAY['read'], $4, now() + $5::text::interval) RETURNING id",
        org,
        new.public_id,
        new.secret_hash,
        user,
        expires or "1 day",
    )
    return key_id, new.public_id, new.token[len(new.prefix) + 1 :]


async def authenticate(
    conn: asyncpg.Connection, public_id: str, presented: bytes
) -> tuple[asyncpg.Record | None, str | None, int]:
    """Call the door in a transaction; return its row, the bound tenant and the keys then visible."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT * FROM api_key_authenticate($1, $2)", public_id, presented)
        tenant = await conn.fetchval("SELECT nullif(current_setting('app.current_org_id', true), '')")
        visible = await conn.fetchval("SELECT count(*) FROM api_keys")
    return row, tenant, visible


async def test_a_valid_key_binds_its_org_and_nothing_else_does(admin, api_conn) -> None:
    org, user = await make_org_with_user(admin, "keys-a")
    key_id, public_id, secret = await insert_key(admin, org, user)
    right = secret_hash(HASH_KEY, public_id, secret)

    row, tenant, visible = await authenticate(api_conn, public_id, right)
    assert row is not None and row["id"] == key_id and row["org_id"] == org
    assert tenant == str(org) and visible == 1
    first_use = await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key_id)
    assert first_use is not None

    # A wrong secret reads as an unknown id: no row (not the key's org, name or hash), no tenant.
    # (Second security review, finding 8a: the row used to be returned for any public id.)
    row, tenant, visible = await authenticate(api_conn, public_id, secret_hash(HASH_KEY, public_id, "x" * 43))
    assert row is None and tenant is None and visible == 0
    # Unknown public id: nothing at all.
    row, tenant, visible = await authenticate(api_conn, "0" * 16, right)
    assert row is None and tenant is None and visible == 0

    # last_used_at is written at most once a minute.
    await authenticate(api_conn, public_id, right)
    assert await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key_id) == first_use
    await admin.execute(
        "UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1", key_id
    )
    await authenticate(api_conn, public_id, right)
    assert await admin.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key_id) > first_use


async def test_revoked_and_expired_keys_bind_nothing(admin, api_conn) -> None:
    org, user = await make_org_with_user(admin, "keys-b")
    revoked_id, revoked_pid, revoked_secret = await insert_key(admin, org, user)
    await admin.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", revoked_id)
    _, expired_pid, expired_secret = await insert_key(admin, org, user, expires="-1 second")
    for public_id, secret in ((revoked_pid, revoked_secret), (expired_pid, expired_secret)):
        row, tenant, visible = await authenticate(
            api_conn, public_id, secret_hash(HASH_KEY, public_id, secret)
        )
        assert row is not None and tenant is None and visible == 0
        assert (
            await admin.fetchval("SELECT last_used_at FROM api_keys WHERE public_id = $1", public_id) is None
        )


async def test_keys_are_tenant_scoped_and_the_api_can_only_revoke(admin, api_conn) -> None:
    org_a, user_a = await make_org_with_user(admin, "keys-c")
    org_b, _ = await make_org_with_user(admin, "keys-d")
    key_a, _, _ = await insert_key(admin, org_a, user_a)
    for context in (org_b, None):
        assert await in_tenant(api_conn, context, "SELECT * FROM api_keys WHERE id = $1", key_a) == "SELECT 0"
        assert (
            await in_tenant(api_conn, context, "UPDATE api_keys SET revoked_at = now() WHERE id = $1", key_a)
            == "UPDATE 0"
        )
    assert (
        await in_tenant(api_conn, org_a, "UPDATE api_keys SET revoked_at = now() WHERE id = $1", key_a)
        == "UPDATE 1"
    )
    for column, value in (
        ("last_used_at", "now()"),
        ("secret_hash", "secret_hash"),
        ("org_id", "org_id"),
        ("scopes", "ARRAY['write']"),
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await in_tenant(api_conn, org_a, f"UPDATE api_keys SET {column} = {value} WHERE id = $1", key_a)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await in_tenant(api_conn, org_a, "DELETE FROM api_keys WHERE id = $1", key_a)
    # A key cannot be written into another org.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await in_tenant(
            api_conn,
            org_a,
            "INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes)"
            " VALUES ($1, '00000000000000aa', $2, 'x', ARRAY['read'])",
            org_b,
            b"\0" * 32,
        )


async def test_the_auth_role_cannot_see_or_verify_keys(database: MigratedDatabase) -> None:
    conn = await asyncpg.connect(database.auth_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM api_keys")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM api_key_authenticate('0000000000000000', $1)", b"\0" * 32)
    finally:
        await conn.close()


async def test_only_a_32_byte_hash_and_known_scopes_are_storable(admin) -> None:
    org, _ = await make_org_with_user(admin, "keys-e")
    bad_rows = [
        ("0123456789abcdef", b"short", ["read"]),
        ("0123456789abcdeg", b"\0" * 32, ["read"]),
        ("0123456789abcdee", b"\0" * 32, ["admin"]),
        ("0123456789abcded", b"\0" * 32, []),
    ]
    for public_id, digest, scopes in bad_rows:
        with pytest.raises(asyncpg.CheckViolationError):
            await admin.execute(
                "INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes)"
                " VALUES ($1, $2, $3, 'x', $4)",
                org,
                public_id,
                digest,
                scopes,
            )
