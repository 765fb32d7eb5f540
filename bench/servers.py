"""The servers of a benchmark: PostgreSQL and Redis, and the uvicorn processes it measures.

PostgreSQL and Redis: BENCH_DATABASE_URL / BENCH_REDIS_URL, or private ones; either way the
benchmark gets a throwaway migrated database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack import processes
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


def start_uvicorn(
    app: str, port: int, env: dict[str, str], log: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    """`uvicorn app` on 127.0.0.1:`port` with this environment plus `env`, output to `log`.

    uvicorn's defaults otherwise (uvloop and httptools when installed, as they are with
    `uvicorn[standard]`), the same for every server a benchmark compares. No --workers flag:
    uvicorn reads WEB_CONCURRENCY, the same variable the services' settings use.
    """
    environment = {**os.environ, **env, "WEB_CONCURRENCY": str(workers)}
    return processes.start_uvicorn(app, port, environment, log, "--no-server-header")


@contextmanager
def stopped_on_exit() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to put started processes in; all are stopped on exit (killed after 15 s)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            process.terminate()  # all at once: their grace periods overlap
        for process in started:
            processes.stop_process(process)


@dataclass(frozen=True)
class BenchRun:
    """What a benchmark runs in: a temporary directory, its database, Redis and processes."""

    root: Path
    database: MigratedDatabase
    redis_url: str
    processes: list[subprocess.Popen[bytes]]


@contextmanager
def bench_run() -> Iterator[BenchRun]:
    """A temporary directory, PostgreSQL and Redis (`bench_servers`), and a list for the
    processes the benchmark starts; on exit the processes are stopped, then everything removed."""
    with (
        tempfile.TemporaryDirectory(prefix="bbbench-") as tmp,
        bench_servers(Path(tmp)) as (database, redis_url),
        stopped_on_exit() as processes,
    ):
        yield BenchRun(Path(tmp), database, redis_url, processes)
