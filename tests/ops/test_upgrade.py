"""Upgrades: the schema of the first release (revision 0001), filled with data, upgraded to head
by the real migrate job keeps every row, lets the same users log in and keeps RLS forced on every
tenant table; migrations form one forward-only chain and each runs in its own transaction.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher

from devstack.databases import migrate_env, run_migrate, url_with
from migrations.roles import Roles
from services.auth.app import create_auth_app
from services.migrate.__main__ import run_migrations
from shared.db import async_url
from shared.settings import Settings, load_settings
from tests.auth.helpers import GENEROUS, KEYRING, PASSWORD, AuthApp, bearer, login
from tests.helpers import fetch_each
from tests.ops.helpers import ROOT

pytestmark = pytest.mark.slow

FIRST_RELEASE = "0001"
ORG_A, ORG_B = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"


def sql(url: str, *statements: tuple[str, tuple[Any, ...]]) -> list[list[asyncpg.Record]]:
    return asyncio.run(fetch_each(url, *statements))


class Scratch:
    """A database of its own with its own roles, dropped afterwards."""

    def __init__(self, server_url: str) -> None:
        self.name = f"bbt_up_{secrets.token_hex(4)}"
        self.server_url = server_url
        self.url = url_with(server_url, database=self.name)
        self.passwords = {"auth": secrets.token_urlsafe(12), "api": secrets.token_urlsafe(12)}
        self.roles = Roles.for_prefix(self.name)

    def settings(self) -> Settings:
        return load_settings(
            env="test",
            service_name="migrate",
            database_url=self.url,
            redis_url="redis://127.0.0.1:1/0",
            db_role_prefix=self.name,
            auth_db_password=self.passwords["auth"],
            api_db_password=self.passwords["api"],
        )

    def role_url(self, role: str) -> str:
        return url_with(self.url, user=f"{self.name}_{role}", password=self.passwords[role])


@pytest.fixture
def scratch(pg_admin_url: str) -> Iterator[Scratch]:
    db = Scratch(pg_admin_url)
    sql(pg_admin_url, (f'CREATE DATABASE "{db.name}"', ()))
    try:
        yield db
    finally:
        sql(
            pg_admin_url,
            (f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)', ()),
            *((f'DROP ROLE IF EXISTS "{db.name}_{r}"', ()) for r in ("auth", "api", "owner")),
        )


def fill_first_release(url: str) -> None:
    """Data as the first release wrote it: two orgs, verified users, sessions, audit events."""
    hashed = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    sql(
        url,
        ("INSERT INTO organizations (id, name) VALUES ($1, 'Org A'), ($2, 'Org B')", (ORG_A, ORG_B)),
        (
            "INSERT INTO users (org_id, email, name, role, password_hash, email_verified_at)"
            " SELECT CASE WHEN g % 2 = 0 THEN $1::uuid ELSE $2::uuid END, 'old' || g || '@example.com',"
            " 'Old ' || g, CASE WHEN g <= 2 THEN 'owner' ELSE 'member' END, $3, now()"
            " FROM generate_series(1, 20) g",
            (ORG_A, ORG_B, hashed),
        ),
        (
            "INSERT INTO sessions (org_id, user_id, token_hash, expires_at)"
            " SELECT org_id, id, sha256(id::text::bytea), now() + interval '7 days' FROM users",
            (),
        ),
        (
            "INSERT INTO invitations (org_id, email, role, expires_at)"
            " VALUES ($1, 'invited@example.com', 'member', now() + interval '7 days')",
            (ORG_A,),
        ),
        (
            "INSERT INTO audit_log (org_id, actor_user_id, action, target_type, target_id)"
            " SELECT org_id, id, 'user.registered', 'user', id::text FROM users",
            (),
        ),
    )


SNAPSHOT = (
    (
        "SELECT id, org_id, email, name, role, password_hash, email_verified_at, created_at"
        " FROM users ORDER BY id",
        (),
    ),
    ("SELECT id, org_id, user_id, token_hash, expires_at, revoked_at FROM sessions ORDER BY id", ()),
    ("SELECT id, org_id, email, role, expires_at FROM invitations ORDER BY id", ()),
    ("SELECT id, org_id, actor_user_id, action, target_id, created_at FROM audit_log ORDER BY id", ()),
    ("SELECT id, name FROM organizations ORDER BY id", ()),
)


async def test_upgrade_from_the_first_release_keeps_data_logins_and_rls(
    scratch: Scratch,
    redis_url: str,
    redis_prefix: str,
):
    await asyncio.to_thread(run_migrations, scratch.settings(), FIRST_RELEASE)
    await asyncio.to_thread(fill_first_release, scratch.url)
    before = await fetch_each(scratch.url, *SNAPSHOT)

    # The upgrade as a deployment runs it: the migrate job, a real process.
    result = await asyncio.to_thread(
        run_migrate, migrate_env(scratch.server_url, scratch.name, scratch.name, scratch.passwords)
    )
    assert result.returncode == 0, result.stderr
    after = await fetch_each(scratch.url, *SNAPSHOT)
    assert after == before

    (version,), tables, (disabled,) = await fetch_each(
        scratch.url,
        ("SELECT version_num FROM alembic_version", ()),
        (
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
            " WHERE c.relkind = 'r' AND (c.relname = 'organizations' OR EXISTS (SELECT 1 FROM"
            " pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id'))",
            (),
        ),
        ("SELECT count(*) FROM users WHERE disabled_at IS NOT NULL", ()),
    )
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert version["version_num"] == head
    assert disabled["count"] == 0
    tenant_tables = {r["relname"]: (r["relrowsecurity"], r["relforcerowsecurity"]) for r in tables}
    assert {"organizations", "users", "sessions", "audit_log", "api_keys"} <= set(tenant_tables)
    assert all(flags == (True, True) for flags in tenant_tables.values()), tenant_tables

    # RLS still binds the api role: nothing without a tenant, only its own org with one.
    conn = await asyncpg.connect(scratch.role_url("api"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 0
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.current_org_id', $1, true)", ORG_A)
            orgs = {r["org_id"] for r in await conn.fetch("SELECT org_id FROM users")}
        assert {str(o) for o in orgs} == {ORG_A}
    finally:
        await conn.close()

    # The users of the first release log in after the upgrade.
    settings = load_settings(
        env="test",
        service_name="auth",
        database_url=scratch.role_url("auth"),
        redis_url=redis_url,
        redis_key_prefix=f"{redis_prefix}up:",
        cookie_secure=False,
        argon2_memory_kib=8192,
        argon2_time_cost=1,
        argon2_parallelism=1,
        **GENEROUS,
    )
    app = create_auth_app(settings, keyring=KEYRING)
    async with app.router.lifespan_context(app), AuthApp(app, settings).client() as client:
        response = await login(client, "old2@example.com")
        assert response.status_code == 200, response.text
        assert response.json()["org"]["id"] == ORG_A
        assert bearer(response)


def _config(extra_versions: Path | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if extra_versions is not None:
        config.set_main_option(
            "version_locations", os.pathsep.join([str(ROOT / "migrations" / "versions"), str(extra_versions)])
        )
    return config


def test_migrations_are_one_forward_only_chain():
    script = ScriptDirectory.from_config(_config())
    assert len(script.get_heads()) == 1, "branches: every migration must follow the previous one"
    revisions = list(script.walk_revisions())  # head first
    assert revisions[-1].revision == FIRST_RELEASE and revisions[-1].down_revision is None
    for newer, older in itertools.pairwise(revisions):
        assert newer.down_revision == older.revision  # linear: no merges, no gaps
        # File name and revision agree, so the next free number is obvious.
        assert Path(newer.path).name.startswith(f"{newer.revision}_")


def test_each_migration_runs_in_its_own_transaction(scratch: Scratch, tmp_path: Path):
    """A failing migration leaves nothing of its work; the ones before it stay committed."""
    run_migrations(scratch.settings())
    head = ScriptDirectory.from_config(_config()).get_current_head()
    (tmp_path / "9998_fine.py").write_text(
        f'revision = "9998"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n'
        "from alembic import op\n\n\ndef upgrade():\n"
        '    op.execute("CREATE TABLE done_before (id int)")\n'
    )
    (tmp_path / "9999_broken.py").write_text(
        'revision = "9999"\ndown_revision = "9998"\nbranch_labels = None\ndepends_on = None\n\n'
        "from alembic import op\n\n\ndef upgrade():\n"
        '    op.execute("CREATE TABLE half_done (id int)")\n'
        '    op.execute("SELECT 1 / 0")\n'
    )
    config = _config(tmp_path)
    config.attributes["roles"] = scratch.roles
    config.attributes["database_url"] = async_url(scratch.url)
    with pytest.raises(Exception, match="division by zero"):
        command.upgrade(config, "heads")
    (version,), (tables,) = sql(
        scratch.url,
        ("SELECT version_num FROM alembic_version", ()),
        ("SELECT to_regclass('public.done_before') AS fine, to_regclass('public.half_done') AS broken", ()),
    )
    # The migration before the broken one is committed; the broken one left nothing.
    assert version["version_num"] == "9998"
    assert tables["fine"] is not None and tables["broken"] is None
