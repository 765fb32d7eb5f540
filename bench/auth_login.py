"""Login benchmark for the auth service (not part of the test suite).

Starts the real auth app with uvicorn (one process, production Argon2 parameters unless
overridden) against a fresh, migrated database, creates a verified user, then measures:

1. /health latency with the service idle;
2. sequential login latency (p50/p99);
3. N concurrent logins (default 50, 100, 200) while /health is sampled every 20 ms, reporting
   login latency, throughput, errors, and the /health p99 under load vs idle.

    .venv/bin/python bench/auth_login.py [--levels 50,100,200] [--sequential 30]

Uses BENCH_DATABASE_URL (a superuser URL) / BENCH_REDIS_URL if given, else starts an embedded
PostgreSQL and a redis-server of its own. ARGON2_* and PASSWORD_HASH_CONCURRENCY from the
environment are passed through.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accounts import create_verified_account  # noqa: E402
from bench.auth_server import auth_server  # noqa: E402
from bench.servers import bench_servers  # noqa: E402
from devstack.databases import MigratedDatabase  # noqa: E402

PASSWORD = "benchmark password 123"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def fmt(values: list[float]) -> str:
    return (
        f"n={len(values)} p50={pct(values, 50) * 1000:.1f} ms p90={pct(values, 90) * 1000:.1f} ms"
        f" p99={pct(values, 99) * 1000:.1f} ms max={max(values) * 1000:.1f} ms"
    )


async def health_sampler(client: httpx.AsyncClient, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        response = await client.get("/health")
        out.append(time.perf_counter() - start)
        assert response.status_code == 200
        await asyncio.sleep(0.02)


async def one_login(client: httpx.AsyncClient, email: str) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        status = response.status_code
    except httpx.HTTPError:
        status = -1
    return time.perf_counter() - start, status


async def run(base: str, email: str, levels: list[int], sequential: int) -> None:
    limits = httpx.Limits(max_connections=max(levels) + 10, max_keepalive_connections=max(levels) + 10)
    async with (
        httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client,
        httpx.AsyncClient(base_url=base, timeout=30) as health,
    ):
        for _ in range(20):
            await health.get("/health")
        idle: list[float] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(health_sampler(health, stop, idle))
        await asyncio.sleep(3)
        stop.set()
        await sampler
        print(f"/health idle:            {fmt(idle)}")
        idle_p99 = pct(idle, 99)

        await one_login(client, email)  # warm-up
        seq = []
        for _ in range(sequential):
            elapsed, status = await one_login(client, email)
            assert status == 200, status
            seq.append(elapsed)
        print(f"login sequential:        {fmt(seq)}")

        for level in levels:
            under_load: list[float] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(health_sampler(health, stop, under_load))
            start = time.perf_counter()
            results = await asyncio.gather(*(one_login(client, email) for _ in range(level)))
            wall = time.perf_counter() - start
            stop.set()
            await sampler
            latencies = [elapsed for elapsed, status in results if status == 200]
            errors = sum(1 for _, status in results if status != 200)
            print(
                f"\n{level} concurrent logins: wall {wall:.1f} s, {len(latencies) / wall:.1f} logins/s,"
                f" errors={errors}"
            )
            if latencies:
                print(f"  login:                 {fmt(latencies)}")
            print(f"  /health under load:    {fmt(under_load)}")
            print(f"  /health p99 under load / idle: {pct(under_load, 99) / idle_p99:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,100,200")
    parser.add_argument("--sequential", type=int, default=30)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    with (
        tempfile.TemporaryDirectory(prefix="bb-bench-") as tmp_dir,
        bench_servers(Path(tmp_dir)) as (database, redis_url),
    ):
        _bench(Path(tmp_dir), database, redis_url, levels, args.sequential)


def _bench(tmp: Path, database: MigratedDatabase, redis_url: str, levels: list[int], sequential: int) -> None:
    with auth_server(tmp, database, redis_url) as server:
        email = f"bench-{secrets.token_hex(4)}@example.com"
        with httpx.Client(base_url=server.base_url, timeout=60) as c:
            create_verified_account(c, server.redis_url, server.key_prefix, email, PASSWORD)
        print(
            f"auth at {server.base_url}; argon2 m={os.environ.get('ARGON2_MEMORY_KIB', '65536')} KiB"
            f" t={os.environ.get('ARGON2_TIME_COST', '3')} p={os.environ.get('ARGON2_PARALLELISM', '4')},"
            f" hash pool={os.environ.get('PASSWORD_HASH_CONCURRENCY', '4')}, cpus={os.cpu_count()}\n"
        )
        asyncio.run(run(server.base_url, email, levels, sequential))


if __name__ == "__main__":
    main()
