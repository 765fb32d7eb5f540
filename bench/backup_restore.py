"""Time `make backup` / `make restore` on a database of 10,000 users (and of none, as baseline).

    .venv/bin/python -m bench.backup_restore [--users 10000]

Seeds organizations of 10 users, each user with 2 sessions and 3 audit events, then runs the
same code `make backup` and `make restore` run (services/admin/backup.py): a custom-format
pg_dump, and a restore into an empty database (roles, pg_restore in one transaction, the migrate
job, Redis reconciliation). The empty schema is measured the same way in the same run: the
ratios say what the data costs on top of the fixed overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.servers import bench_servers
from devstack.databases import MigratedDatabase, url_with
from services.admin.backup import dump, restore
from shared.settings import Settings, load_settings

FAKE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$" + "A" * 22 + "$" + "B" * 43


async def seed(admin_url: str, users: int) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        orgs = max(1, users // 10)
        org_ids = await conn.fetch(
            "INSERT INTO organizations (name) SELECT 'Org ' || g FROM generate_series(1, $1) g RETURNING id",
            orgs,
        )
        await conn.execute(
            "INSERT INTO users (org_id, email, name, role, password_hash, email_verified_at)"
            " SELECT ($1::uuid[])[1 + (g - 1) % $2], 'user' || g || '@example.com', 'User ' || g,"
            " CASE WHEN g <= $2 THEN 'owner' ELSE 'member' END, $3, now()"
            " FROM generate_series(1, $4) g",
            [r["id"] for r in org_ids],
            orgs,
            FAKE_HASH,
            users,
        )
        await conn.execute(
            "INSERT INTO sessions (org_id, user_id, token_hash, expires_at, user_agent, ip_address)"
            " SELECT u.org_id, u.id, sha256((u.id::text || s)::bytea), now() + interval '7 days',"
            " 'Mozilla/5.0 (bench)', '203.0.113.7' FROM users u, generate_series(1, 2) s"
        )
        await conn.execute(
            "INSERT INTO audit_log (org_id, actor_user_id, action, target_type, target_id, details)"
            " SELECT u.org_id, u.id, a, 'user', u.id::text, '{\"method\": \"password\"}'"
            " FROM users u, unnest(ARRAY['user.registered', 'session.created', 'auth.login']) a"
        )
    finally:
        await conn.close()


def settings_for(database: MigratedDatabase, name: str, redis_url: str) -> Settings:
    def password(url: str) -> str:
        return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]

    return load_settings(
        env="test",
        service_name="bench",
        database_url=url_with(database.admin_url, database=name),
        redis_url=redis_url,
        redis_key_prefix=f"bench{secrets.token_hex(3)}:",
        db_role_prefix=database.name,
        auth_db_password=password(database.auth_url),
        api_db_password=password(database.api_url),
    )


async def execute(admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def measure(database: MigratedDatabase, redis_url: str, root: Path, label: str) -> dict[str, float]:
    source = settings_for(database, database.name, redis_url)
    file = root / f"{label}.dump"
    dumped = dump(source, file)
    target_name = f"{database.name}_r{label}"
    asyncio.run(execute(database.admin_url, f'CREATE DATABASE "{target_name}"'))
    try:
        restored = restore(settings_for(database, target_name, redis_url), file)
    finally:
        asyncio.run(execute(database.admin_url, f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)'))
    return {"dump_s": dumped, "restore_s": restored, "bytes": float(file.stat().st_size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bbbench-") as directory:
        root = Path(directory)
        with bench_servers(root) as (database, redis_url):
            baseline = measure(database, redis_url, root, "empty")
            started = time.perf_counter()
            asyncio.run(seed(database.admin_url, args.users))
            seeded = time.perf_counter() - started
            loaded = measure(database, redis_url, root, "full")
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min)")
    print(
        f"seeded {args.users} users, {2 * args.users} sessions, {3 * args.users} audit events"
        f" in {seeded:.1f} s"
    )
    print(f"{'':14}{'empty schema':>14}{f'{args.users} users':>14}{'ratio':>8}")
    for key, name in (("dump_s", "backup (s)"), ("restore_s", "restore (s)"), ("bytes", "file (KiB)")):
        scale = 1024 if key == "bytes" else 1
        empty, full = baseline[key] / scale, loaded[key] / scale
        print(f"{name:14}{empty:14.2f}{full:14.2f}{full / empty:8.1f}")


if __name__ == "__main__":
    main()
