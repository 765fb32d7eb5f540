"""Schema privileges after the real migrate job (finding 6 of issue 11).

On PostgreSQL 15+ `public` belongs to pg_database_owner, so the owner role's GRANTs on it only
warned and the services worked through PUBLIC's default access. Now the owner role owns the
schema, PUBLIC has nothing on it and auth/api have USAGE by explicit grant.
"""

from __future__ import annotations

import asyncpg
import pytest

from devstack.databases import MigratedDatabase

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


async def test_owner_owns_the_schema_and_grants_are_explicit(database: MigratedDatabase) -> None:
    conn = await asyncpg.connect(database.admin_url)
    try:
        owner = await conn.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'"
        )
        rows = await conn.fetch(
            "SELECT coalesce(g.rolname, 'PUBLIC') AS grantee, a.privilege_type FROM pg_namespace n, "
            "aclexplode(n.nspacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee WHERE n.nspname = 'public'"
        )
    finally:
        await conn.close()
    grants = {(row["grantee"], row["privilege_type"]) for row in rows}
    assert owner == database.roles.owner
    assert (database.roles.auth, "USAGE") in grants and (database.roles.api, "USAGE") in grants
    assert not [grant for grant in grants if grant[0] == "PUBLIC"], grants
    for role in (database.roles.auth, database.roles.api):
        assert (role, "CREATE") not in grants


async def test_services_still_reach_their_tables(database: MigratedDatabase) -> None:
    for url in (database.auth_url, database.api_url):
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT has_schema_privilege('public', 'USAGE')")
            assert not await conn.fetchval("SELECT has_schema_privilege('public', 'CREATE')")
        finally:
            await conn.close()
