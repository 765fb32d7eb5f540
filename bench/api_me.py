"""Benchmark: BlockBot's authenticated `GET /api/v1/me` side by side with its yardsticks, one run.

    .venv/bin/python bench/api_me.py [--seconds 10] [--connections 50] [--rounds 2]

Starts, as real processes on this machine, each a uvicorn with ONE worker unless said:

* `raw hello`      a raw ASGI hello-world (bench/hello_apps.py): uvicorn alone;
* `fastapi hello`  a FastAPI hello-world: plus routing and a JSON response;
* `conventional`   bench/conventional_app.py `GET /users/me`: a sync `def` route, a SQLAlchemy
                   ORM Session per request, PyJWT HS256, one ORM query (how most FastAPI projects
                   are written; needs `psycopg[binary]`, the `bench` extra);
* `api /me`        BlockBot's api, direct (production settings: INFO JSON access log to a file,
                   tracing off, real rate limiter and revocation check in Redis, RLS in PostgreSQL);
* `api /me traefik` the same api process behind a real Traefik (the repository's routes);
* `api /me 2w`     a second api started with WEB_CONCURRENCY=2 (two uvicorn workers).
* `api /me key`    the direct api again, called with an API key (`Bearer bb_...`) instead of
                   the access token: verified by the statement that binds its org, in a
                   transaction, its own windows in the same Lua call.

Then drives each in interleaved rounds with an external load generator (wrk if installed,
`apt-get install wrk`; else the asyncio generator in this file, run in its own process), and
prints requests/s, p50, p99, non-2xx responses and the SERVER CPU per request (user+system
time of the server's process tree from /proc, divided by the requests served), the load
average around each round, then the medians and the ratios the issue's targets are stated in.

PostgreSQL and Redis: BENCH_DATABASE_URL (a superuser URL) and BENCH_REDIS_URL, or an embedded
PostgreSQL and a local redis-server started here. The machine is shared: compare ratios within
one run, never absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.databases import MigratedDatabase

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the fallback load generator (run in a child process) ------------------------------------
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
            if not 200 <= status < 300:
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
        "non2xx": len(errors),
    }


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """requests, req/s, p50, p99 and non-2xx from `wrk --latency` output."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    requests = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if requests is None or rps is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError("could not parse wrk output:\n" + output)
    return {
        "requests": int(requests.group(1)),
        "rps": float(rps.group(1)),
        "p50_ms": _wrk_ms(percentiles["50"]),
        "p99_ms": _wrk_ms(percentiles["99"]),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def run_load(url: str, token: str | None, seconds: float, connections: int) -> dict[str, Any]:
    """One measurement with wrk (one thread) if installed, else with the asyncio generator."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        command = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
        if token:
            command += ["-H", f"Authorization: Bearer {token}"]
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True)
        return parse_wrk(out.stdout)
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
        env={**os.environ, "BENCH_TOKEN": token or ""},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- server CPU from /proc -------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's workers are children of its supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU seconds used so far by these processes and their descendants."""
    total = 0
    for root in pids:
        for pid in _tree(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLOCK_TICKS


# --- orchestration -----------------------------------------------------------------------------
@dataclass
class Target:
    label: str
    url: str
    token: str | None
    pids: Callable[[], list[int]]
    results: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return float(statistics.median(r[key] for r in self.results))


def _traefik(http_port: int, ops_port: int, upstream: str, log: Path) -> subprocess.Popen[bytes]:
    """Traefik with the repository's routes and the local stack's entry-point options."""
    binary = Path(sys.executable).parent / "traefik"
    command = [
        str(binary) if binary.exists() else (shutil.which("traefik") or "traefik"),
        f"--entryPoints.web.address=127.0.0.1:{http_port}",
        f"--entryPoints.ops.address=127.0.0.1:{ops_port}",
        "--entryPoints.web.http.aliasHeadersStrategy=delete",
        "--ping=true",
        "--ping.entryPoint=ops",
        f"--providers.file.directory={ROOT / 'traefik' / 'dynamic'}",
        "--log.level=WARN",
        "--accessLog=true",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
    ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "BLOCKBOT_API_UPSTREAM": upstream},
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
    token = jwt.encode(
        claims, key, algorithm="EdDSA", headers={"kid": jwk_thumbprint(key.public_key()), "typ": "at+jwt"}
    )
    return token, b64url_encode(raw_public_bytes(key.public_key()))


async def _api_key(database: MigratedDatabase, info: dict[str, Any], hash_secret: str) -> str:
    """A read key of the bench org, stored as the api stores it (its keyed hash only)."""
    import asyncpg

    from shared.api_keys import generate_key

    new = generate_key("test", hash_secret.encode())
    conn = await asyncpg.connect(database.admin_url)
    try:
        await conn.execute(
            "INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes, created_by)"
            " VALUES ($1, $2, $3, 'bench bot', ARRAY['read'], $4)",
            info["org_id"],
            new.public_id,
            new.secret_hash,
            info["user_id"],
        )
    finally:
        await conn.close()
    return new.token


def _conventional(admin_url: str) -> tuple[dict[str, str], str]:
    """Seed the conventional app's table; its environment and an HS256 token for its user."""
    import jwt

    url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    secret = secrets.token_urlsafe(32)
    env = {"CONVENTIONAL_DATABASE_URL": url, "CONVENTIONAL_SECRET": secret}
    os.environ.update(env)
    from bench import conventional_app

    user_id = conventional_app.seed()
    conventional_app.engine.dispose()
    token = jwt.encode({"sub": str(user_id), "exp": int(time.time()) + 3600}, secret, algorithm="HS256")
    return env, token


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(target: Target, seconds: float, connections: int) -> dict[str, Any]:
    pids = target.pids()
    cpu_before = cpu_seconds(pids)
    result = run_load(target.url, target.token, seconds, connections)
    cpu = cpu_seconds(pids) - cpu_before
    result["cpu_ms_per_request"] = cpu * 1000 / max(1, result["requests"])
    return result


def _line(label: str, r: dict[str, Any]) -> str:
    return (
        f"  {label:18s} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
        f"  cpu/req {r['cpu_ms_per_request']:6.3f} ms  non-2xx {r['non2xx']}"
    )


def report(targets: dict[str, Target]) -> None:
    """Medians over the rounds, then the ratios the targets are stated in."""
    print("medians:")
    for t in targets.values():
        print(
            _line(
                t.label, {k: t.median(k) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "non2xx")}
            )
        )

    print("ratios (targets in brackets; cpu = server CPU per request, the steadier figure):")
    for text, a, b, key, target in RATIOS:
        if a in targets and b in targets:
            value = targets[a].median(key) / targets[b].median(key)
            print(f"  {text:38s} = {value:5.2f}   {target}")


# (what, numerator, denominator, figure, target): the targets, then context.
RATIOS = [
    ("api /me : conventional req/s", "me", "conventional", "rps", "[>= 3]"),
    ("api /me : fastapi hello req/s", "me", "fastapi", "rps", "[>= 0.33]"),
    ("api /me cpu : fastapi hello cpu", "me", "fastapi", "cpu_ms_per_request", "[<= 3]"),
    ("api /me via traefik : direct req/s", "traefik", "me", "rps", "[>= 0.80]"),
    ("api 2 workers : 1 worker req/s", "me2", "me", "rps", "[>= 1.5]"),
    # On a box loaded by other work, requests/s favours servers with many threads (the kernel
    # schedules threads, the conventional app runs 40); CPU per request does not depend on it.
    ("conventional cpu : api /me cpu", "conventional", "me", "cpu_ms_per_request", ""),
    ("api /me key : conventional req/s", "key", "conventional", "rps", "[>= 3]"),
    ("api /me key : fastapi hello req/s", "key", "fastapi", "rps", "[>= 0.33]"),
    ("api /me key cpu : fastapi hello cpu", "key", "fastapi", "cpu_ms_per_request", "[<= 3]"),
    ("api /me key : api /me token req/s", "key", "me", "rps", ""),
    ("fastapi hello : raw hello req/s", "fastapi", "raw", "rps", ""),
    ("fastapi hello cpu : raw hello cpu", "fastapi", "raw", "cpu_ms_per_request", ""),
    ("conventional : fastapi hello req/s", "conventional", "fastapi", "rps", ""),
]
TARGETS = ("raw", "fastapi", "conventional", "me", "traefik", "me2", "key")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--targets", help=f"measure only these, comma-separated (of {', '.join(TARGETS)})", default=""
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="then profile the direct api under load with py-spy, raw samples into this file",
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        token = os.environ.get("BENCH_TOKEN") or None
        print(json.dumps(asyncio.run(_load(args.load, token, args.seconds, args.connections))))
        return

    from bench import pyspy
    from bench.servers import bench_run, start_uvicorn
    from devstack.ports import free_port, wait_for_port

    with bench_run() as run:
        root, database, redis_url, processes = run.root, run.database, run.redis_url, run.processes
        info = asyncio.run(_seed(database))
        token, public_key = _mint(info)
        hash_secret = secrets.token_urlsafe(32)
        api_key = asyncio.run(_api_key(database, info, hash_secret))
        conventional_env, conventional_token = _conventional(database.admin_url)
        high = str(10**9)
        api_env = {
            "ENV": "test",
            "SERVICE_NAME": "api",
            "LOG_LEVEL": "INFO",
            "DATABASE_URL": info["api_url"],
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"bench{secrets.token_hex(3)}:",
            "JWT_PUBLIC_KEYS": public_key,
            "API_KEY_HASH_SECRET": hash_secret,
            "RATELIMIT_ORG_PER_HOUR": high,
            "RATELIMIT_USER_PER_HOUR": high,
            "RATELIMIT_USER_ENDPOINT_PER_MINUTE": high,
            # A pool as large as the bench's concurrency needs and no overflow: overflow
            # connections are closed on check-in, so under a steady 50 connections they would
            # be opened and closed all the time (TLS probe, authentication) and measured here.
            "DATABASE_POOL_SIZE": "20",
            "DATABASE_MAX_OVERFLOW": "0",
            "OTEL_TRACES_EXPORTER": "none",
        }
        ports = {
            name: free_port()
            for name in ("raw", "fastapi", "conventional", "me", "me2", "traefik", "traefik_ops")
        }
        servers = {
            "raw": start_uvicorn("bench.hello_apps:raw", ports["raw"], {}, root / "raw.log"),
            "fastapi": start_uvicorn("bench.hello_apps:fastapi", ports["fastapi"], {}, root / "fastapi.log"),
            "conventional": start_uvicorn(
                "bench.conventional_app:app",
                ports["conventional"],
                conventional_env,
                root / "conventional.log",
            ),
            "me": start_uvicorn("services.api.main:app", ports["me"], api_env, root / "api.log"),
            "me2": start_uvicorn(
                "services.api.main:app", ports["me2"], api_env, root / "api2.log", workers=2
            ),
            "traefik": _traefik(
                ports["traefik"],
                ports["traefik_ops"],
                f"http://127.0.0.1:{ports['me']}",
                root / "traefik.log",
            ),
        }
        processes.extend(servers.values())
        for name in servers:
            wait_for_port(ports[name], timeout=60)

        me_path = "/api/v1/me"
        targets = {
            "raw": Target(
                "raw hello", f"http://127.0.0.1:{ports['raw']}/", None, lambda: [servers["raw"].pid]
            ),
            "fastapi": Target(
                "fastapi hello",
                f"http://127.0.0.1:{ports['fastapi']}/",
                None,
                lambda: [servers["fastapi"].pid],
            ),
            "conventional": Target(
                "conventional",
                f"http://127.0.0.1:{ports['conventional']}/users/me",
                conventional_token,
                lambda: [servers["conventional"].pid],
            ),
            "me": Target(
                "api /me", f"http://127.0.0.1:{ports['me']}{me_path}", token, lambda: [servers["me"].pid]
            ),
            "traefik": Target(
                "api /me traefik",
                f"http://127.0.0.1:{ports['traefik']}{me_path}",
                token,
                lambda: [servers["me"].pid, servers["traefik"].pid],
            ),
            "me2": Target(
                "api /me 2w", f"http://127.0.0.1:{ports['me2']}{me_path}", token, lambda: [servers["me2"].pid]
            ),
            "key": Target(
                "api /me key",
                f"http://127.0.0.1:{ports['me']}{me_path}",
                api_key,
                lambda: [servers["me"].pid],
            ),
        }
        import httpx

        for target in targets.values():
            headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
            for _ in range(100):
                check = httpx.get(target.url, headers=headers, timeout=10)
                if check.status_code == 200:
                    break
                time.sleep(0.1)  # Traefik loads its routes shortly after it listens
            if check.status_code != 200:
                raise SystemExit(f"{target.label} answered {check.status_code}: {check.text}")
            run_load(target.url, target.token, 1, args.connections)  # warm-up: pools, caches

        direct = targets["me"]
        if args.targets:
            chosen = args.targets.split(",")
            unknown = set(chosen) - set(targets)
            if unknown:
                raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")
            targets = {name: targets[name] for name in chosen}
        generator = "wrk -t1" if shutil.which("wrk") else "asyncio generator (no wrk installed)"
        print(
            f"{generator}, {args.connections} connections, {args.seconds:g} s per measurement, "
            f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs shared by servers, load "
            "generator, PostgreSQL and Redis"
        )
        for number in range(1, args.rounds + 1):
            print(f"round {number} (load average before: {_load_average()})")
            order = list(targets.values())
            if number % 2 == 0:
                order.reverse()  # no target always runs right after the same neighbour
            for target in order:
                result = measure(target, args.seconds, args.connections)
                target.results.append(result)
                print(_line(target.label, result), flush=True)
        print(f"load average after: {_load_average()}")
        report(targets)
        if any(r["non2xx"] for t in targets.values() for r in t.results):
            print("WARNING: some responses were not 2xx; figures above are not comparable")
        if args.profile:
            sampler = pyspy.record(servers["me"].pid, args.seconds, args.profile)
            print("profiled: " + _line(direct.label, measure(direct, args.seconds, args.connections)))
            sampler.wait()
            print("\n".join(pyspy.summarize(args.profile)))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
