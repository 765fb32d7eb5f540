"""The migrate job: idempotent, and a second run changes nothing."""

from __future__ import annotations

import asyncpg
import pytest

from devstack.databases import MigratedDatabase, migrate_env, run_migrate

pytestmark = pytest.mark.slow

CATALOG_SNAPSHOT = """
SELECT
  (SELECT string_agg(relname || ':' || relrowsecurity || relforcerowsecurity || ':' ||
                     coalesce(array_to_string(relacl, ','), ''), ';' ORDER BY relname)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'),
  (SELECT string_agg(polname || '@' || polrelid::regclass::text, ';'
                     ORDER BY polname, polrelid::regclass::text)
     FROM pg_policy),
  (SELECT version_num FROM alembic_version)
"""


async def test_second_migrate_run_is_a_no_op(database: MigratedDatabase, pg_admin_url: str):
    conn = await asyncpg.connect(database.admin_url)
    try:
        before = await conn.fetchrow(CATALOG_SNAPSHOT)
        prefix = database.roles.owner.removesuffix("_owner")
        result = run_migrate(
            migrate_env(pg_admin_url, database.name, prefix, {"auth": "pw-a-1234567", "api": "pw-b-1234567"})
        )
        assert result.returncode == 0, result.stderr
        after = await conn.fetchrow(CATALOG_SNAPSHOT)
    finally:
        await conn.close()
    assert before is not None and after is not None
    assert tuple(before) == tuple(after)
    assert after[2] is not None


def test_migrate_refuses_a_bad_configuration_before_touching_anything():
    result = run_migrate({"DATABASE_URL": "not-a-url", "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
