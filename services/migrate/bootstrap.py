"""Create the deployment's database roles with least privilege; safe to run again and again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import asyncpg

from migrations.roles import Roles

SCRAM_ITERATIONS = 4096


def scram_verifier(password: str) -> str:
    """A SCRAM-SHA-256 verifier, so the plaintext password never reaches the server or its logs."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


async def _ensure_role(conn: asyncpg.Connection, name: str, *, login: bool, password: str | None) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
    verb = "ALTER" if exists else "CREATE"
    # Attributes are (re)asserted every run, so a role tampered with by hand is repaired.
    attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT " + (
        "LOGIN" if login else "NOLOGIN"
    )
    stmt = await conn.fetchval(
        "SELECT format('%s ROLE %I WITH ' || $2::text, $3::text, $1::text)", name, attributes, verb
    )
    await conn.execute(stmt)
    if password is not None:
        stmt = await conn.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
            name,
            scram_verifier(password),
        )
        await conn.execute(stmt)


async def bootstrap_roles(
    admin_dsn: str, roles: Roles, *, auth_password: str | None, api_password: str | None
) -> None:
    """Create or repair the owner, auth and api roles and the database-level grants."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        async with conn.transaction():
            # Serialize concurrent migrate jobs (two containers started at once).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('blockbot-migrate'))")
            await _ensure_role(conn, roles.owner, login=False, password=None)
            await _ensure_role(conn, roles.auth, login=True, password=auth_password)
            await _ensure_role(conn, roles.api, login=True, password=api_password)
            me = await conn.fetchval("SELECT current_user")
            db = await conn.fetchval("SELECT current_database()")
            is_member = await conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", me, roles.owner)
            if not is_member:
                await conn.execute(
                    await conn.fetchval(
                        "SELECT format('GRANT %I TO %I', $1::text, $2::text)", roles.owner, me
                    )
                )
            # Only our roles may connect; only the owner may create objects.
            await conn.execute(
                await conn.fetchval("SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', $1::text)", db)
            )
            # The owner role owns the schema, so its own GRANTs in the migrations take effect
            # (on PostgreSQL 15+ `public` belongs to pg_database_owner and a non-owner's GRANT
            # only warns). PUBLIC keeps nothing: every role has exactly the grants it needs.
            await conn.execute(
                await conn.fetchval("SELECT format('ALTER SCHEMA public OWNER TO %I', $1::text)", roles.owner)
            )
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('GRANT USAGE ON SCHEMA public TO %I, %I', $1::text, $2::text)",
                    roles.auth,
                    roles.api,
                )
            )
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', $1::text, $2::text)",
                    db,
                    roles.owner,
                )
            )
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', $1::text, $2::text, $3::text)",
                    db,
                    roles.auth,
                    roles.api,
                )
            )
    finally:
        await conn.close()
