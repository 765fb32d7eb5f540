"""PostgreSQL and Redis for a benchmark: BENCH_DATABASE_URL / BENCH_REDIS_URL, or private ones.

Either way the benchmark gets a throwaway migrated database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.databases import MigratedDatabase, migrated_database
from devstack.postgres import EmbeddedPostgres
from devstack.redis import LocalRedis


@contextmanager
def bench_servers(root: Path) -> Iterator[tuple[MigratedDatabase, str]]:
    """Yield (a migrated throwaway database, Redis URL); all of it is removed on exit."""
    admin_url = os.environ.get("BENCH_DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL")
    postgres: EmbeddedPostgres | None = None
    redis: LocalRedis | None = None
    try:
        if not admin_url:
            postgres = EmbeddedPostgres(root / "pg").start()
            admin_url = postgres.admin_url
        if not redis_url:
            redis = LocalRedis(root / "redis").start()
            redis_url = redis.url
        with migrated_database(admin_url, f"bench_{secrets.token_hex(4)}") as database:
            yield database, redis_url
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.destroy()
