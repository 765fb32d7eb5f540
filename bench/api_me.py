"""Benchmark: authenticated `GET /api/v1/me` against a raw uvicorn hello-world, same run, same box.

    .venv/bin/python bench/api_me.py [--seconds 10] [--connections 50]

Starts (as real processes, uvicorn with one worker each) the api app against a freshly migrated
database and a raw ASGI hello-world app, seeds one org and user, mints a token with a
bench-only Ed25519 key (its public half goes to JWT_PUBLIC_KEYS, as the auth service's would),
then drives each server with a keep-alive HTTP/1.1 load generator running in its OWN process
(so it does not share the server's CPU accounting) and prints requests/s, p50 and p99 for both
and the ratio. Rate limits are raised so that every request is served (the limiter still runs:
one Lua call per request). PostgreSQL and Redis: BENCH_DATABASE_URL (a superuser URL) and
BENCH_REDIS_URL, or an embedded PostgreSQL and a local redis-server started here.

The app logs at WARNING during the run (the per-request JSON access log is off) so the figure
measures the request path, not the terminal.

Per request the api does one Redis round trip (the rate-limit windows and the revoked-session
marker in one Lua call) and five PostgreSQL ones (BEGIN, the pool's pre-ping `SELECT 1`,
`set_config` of the tenant, the user+org SELECT, COMMIT).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.databases import MigratedDatabase

ROOT = Path(__file__).resolve().parents[1]


# --- the hello-world app (imported by uvicorn as bench.api_me:hello) -------------------------
async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b'{"hello":"world"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"17")],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- the load generator (run in a child process) ---------------------------------------------
async def _connection(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(url: str, token: str | None, seconds: float, connections: int) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"GET {parts.path} HTTP/1.1", f"Host: {host}:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    # Warm-up (connections, caches, JIT-less but pools and prepared statements).
    warm: list[float] = []
    await asyncio.gather(
        *(_connection(host, port, request, time.perf_counter() + 1.0, warm, []) for _ in range(connections))
    )
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, request, started + seconds, latencies, errors) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "errors": len(errors),
        "error_statuses": sorted(set(errors))[:5],
    }


def run_load(url: str, token: str | None, seconds: float, connections: int) -> dict[str, Any]:
    """Run the load generator in a separate process and return its JSON result."""
    env = {**os.environ, "BENCH_TOKEN": token or ""}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- orchestration -----------------------------------------------------------------------------
def _uvicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def _seed(database: MigratedDatabase) -> dict[str, Any]:
    """One org with its owner; returns what the run needs to mint a token and connect."""
    import asyncpg

    conn = await asyncpg.connect(database.admin_url)
    try:
        org_id = await conn.fetchval("INSERT INTO organizations (name) VALUES ('Bench') RETURNING id")
        user_id = await conn.fetchval(
            "INSERT INTO users (org_id, email, name, role, password_hash, email_verified_at)"
            " VALUES ($1, 'bench@example.com', 'Bench', 'owner', 'x', now()) RETURNING id",
            org_id,
        )
    finally:
        await conn.close()
    return {"org_id": org_id, "user_id": user_id, "api_url": database.api_url}


def _mint(info: dict[str, Any]) -> tuple[str, str]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.access_tokens import b64url_encode, jwk_thumbprint, raw_public_bytes

    key = Ed25519PrivateKey.generate()
    now = int(time.time())
    claims = {
        "iss": "blockbot-auth",
        "aud": "blockbot-api",
        "sub": str(info["user_id"]),
        "org": str(info["org_id"]),
        "role": "owner",
        "sid": str(uuid.uuid4()),
        "jti": secrets.token_hex(8),
        "iat": now,
        "exp": now + 3600,
    }
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": jwk_thumbprint(key.public_key())})
    return token, b64url_encode(raw_public_bytes(key.public_key()))


async def _limiter_memory(redis_url: str, prefix: str, org_id: Any) -> int | None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        used = await client.memory_usage(f"{prefix}rl:org:3600:{org_id}")
        return int(used) if used is not None else None
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        token = os.environ.get("BENCH_TOKEN") or None
        print(json.dumps(asyncio.run(_load(args.load, token, args.seconds, args.connections))))
        return

    from bench.servers import bench_servers
    from devstack.ports import free_port, wait_for_port

    processes: list[subprocess.Popen[bytes]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bbbench-") as tmp,
        bench_servers(Path(tmp)) as (
            database,
            redis_url,
        ),
    ):
        root = Path(tmp)
        try:
            info = asyncio.run(_seed(database))
            token, public_key = _mint(info)
            key_prefix = f"bench{secrets.token_hex(3)}:"
            api_port, hello_port = free_port(), free_port()
            high = str(10**9)
            api_env = {
                "ENV": "test",
                "SERVICE_NAME": "api",
                "LOG_LEVEL": "WARNING",
                "DATABASE_URL": info["api_url"],
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": key_prefix,
                "JWT_PUBLIC_KEYS": public_key,
                "RATELIMIT_ORG_PER_HOUR": high,
                "RATELIMIT_USER_PER_HOUR": high,
                "RATELIMIT_USER_ENDPOINT_PER_MINUTE": high,
                "DATABASE_POOL_SIZE": "20",
                "OTEL_TRACES_EXPORTER": "none",
            }
            processes.append(_uvicorn("services.api.main:app", api_port, api_env, root / "api.log"))
            processes.append(_uvicorn("bench.api_me:hello", hello_port, {}, root / "hello.log"))
            wait_for_port(api_port, timeout=30)
            wait_for_port(hello_port, timeout=30)

            import httpx

            check = httpx.get(
                f"http://127.0.0.1:{api_port}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
            )
            if check.status_code != 200:
                raise SystemExit(f"/me answered {check.status_code}: {check.text}")

            print(
                f"{args.connections} connections, {args.seconds:g} s each, "
                f"{os.cpu_count()} CPUs (servers, load generator, PostgreSQL and Redis share them)"
            )
            # Other work on the box skews both figures: compare runs only at a similar load.
            print("  load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
            me = run_load(f"http://127.0.0.1:{api_port}/api/v1/me", token, args.seconds, args.connections)
            hello_result = run_load(f"http://127.0.0.1:{hello_port}/", None, args.seconds, args.connections)
            for label, r in (("GET /api/v1/me (auth+RL+DB)", me), ("uvicorn hello-world", hello_result)):
                print(
                    f"  {label:30s} {r['rps']:9.0f} req/s   p50 {r['p50_ms']:7.2f} ms   "
                    f"p99 {r['p99_ms']:7.2f} ms   non-200: {r['errors']}"
                )
            print(
                f"  ratio /me : hello-world = {me['rps'] / hello_result['rps']:.3f} "
                f"(1 : {hello_result['rps'] / me['rps']:.1f})"
            )
            print("  load average after:  " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
            memory = asyncio.run(_limiter_memory(redis_url, key_prefix, info["org_id"]))
            print(
                f"  rate-limit key memory (org window, after {me['requests']} requests): "
                f"{memory} bytes (Redis MEMORY USAGE)"
            )
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
