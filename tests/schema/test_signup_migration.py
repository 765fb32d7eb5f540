"""Migration 0005 carries pending sign-ups of the old schema over as sign-up attempts."""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from devstack.databases import url_with
from services.migrate.__main__ import run_migrations
from shared.settings import load_settings
from tests.helpers import fetch_each


def test_pending_signups_become_attempts(pg_admin_url: str) -> None:
    name = f"bbt_mig_{secrets.token_hex(4)}"
    asyncio.run(fetch_each(pg_admin_url, (f'CREATE DATABASE "{name}"', ())))
    url = url_with(pg_admin_url, database=name)
    settings = load_settings(
        env="test",
        service_name="migrate",
        database_url=url,
        redis_url="redis://127.0.0.1:1/0",
        db_role_prefix=name,
        auth_db_password="pw-a-1234567",
        api_db_password="pw-b-1234567",
    )
    try:
        run_migrations(settings, target="0003")
        raw = secrets.token_bytes(32)
        asyncio.run(
            fetch_each(
                url,
                (
                    "INSERT INTO organizations (id, name) VALUES"
                    " ('00000000-0000-4000-8000-000000000001', 'Pending Org'),"
                    " ('00000000-0000-4000-8000-000000000002', 'Live Org')",
                    (),
                ),
                (
                    "INSERT INTO users (id, org_id, email, name, role, password_hash, email_verified_at)"
                    " VALUES ('00000000-0000-4000-8000-0000000000a1',"
                    " '00000000-0000-4000-8000-000000000001', 'Pending@Example.com', 'Pen', 'owner',"
                    " 'hash-p', NULL), ('00000000-0000-4000-8000-0000000000a2',"
                    " '00000000-0000-4000-8000-000000000002', 'live@example.com', 'Liv', 'owner',"
                    " 'hash-l', now())",
                    (),
                ),
                (
                    "INSERT INTO one_time_tokens (org_id, user_id, purpose, token_hash, expires_at)"
                    " VALUES ('00000000-0000-4000-8000-000000000001',"
                    " '00000000-0000-4000-8000-0000000000a1', 'email_verification', $1,"
                    " now() + interval '1 day')",
                    (hashlib.sha256(raw).digest(),),
                ),
            )
        )
        run_migrations(settings)
        attempts, orgs = asyncio.run(
            fetch_each(
                url,
                ("SELECT email, token_hash, password_hash, name, org_name FROM signup_attempts", ()),
                ("SELECT name FROM organizations ORDER BY name", ()),
            )
        )
        assert [tuple(r) for r in attempts] == [
            ("pending@example.com", hashlib.sha256(raw).digest(), "hash-p", "Pen", "Pending Org")
        ]
        assert [r["name"] for r in orgs] == ["Live Org"]
        forced = asyncio.run(
            fetch_each(
                url,
                (
                    "SELECT bool_and(relforcerowsecurity) AS forced FROM pg_class"
                    " WHERE relname IN ('organizations', 'users', 'one_time_tokens')",
                    (),
                ),
            )
        )
        assert forced[0][0]["forced"] is True
    finally:
        asyncio.run(
            fetch_each(
                pg_admin_url,
                (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', ()),
                *((f'DROP ROLE IF EXISTS "{name}_{r}"', ()) for r in ("auth", "api", "owner")),
            )
        )
