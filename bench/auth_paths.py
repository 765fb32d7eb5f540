"""Benchmark: the other hot paths, and the PostgreSQL statements of each request path.

    .venv/bin/python bench/auth_paths.py [--seconds 10] [--connections 50] [--sessions 20]

Starts (real uvicorn processes, one worker each) the auth service, a second auth process whose
login limit is 1/minute per IP (every login after the first is refused), the api, and a FastAPI
hello as the yardstick, against a fresh database with `log_statement = all` for the service
roles (embedded PostgreSQL only: its log is read back). Then prints:

1. the statements PostgreSQL received for one (warm) request of `GET /api/v1/me`, `/org`,
   `/users` (with an access token, and `/me` and `/users` with an API key) and
   `POST /api/v1/auth/refresh`, in order, with their count, and the Redis commands of each;
2. `POST /auth/refresh` requests/s: `--sessions` sessions refreshing their own rotating token
   concurrently (asyncio client), with the auth process's CPU per request;
3. refused logins (429) requests/s with wrk (POST, same body), with CPU per request, beside the
   FastAPI hello measured in the same run, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accounts import create_verified_account  # noqa: E402
from bench.api_me import cpu_seconds, parse_wrk, run_load  # noqa: E402
from bench.servers import bench_run, start_uvicorn  # noqa: E402
from devstack.ports import free_port, wait_for_port  # noqa: E402
from services.auth.keys import generate_seed  # noqa: E402

PASSWORD = "benchmark password 123"
REFRESH_COOKIE = "bb_refresh"
HIGH = str(10**9)


async def _log_statements(admin_url: str, roles: list[str]) -> None:
    """Every statement of these roles goes to the server log, prefixed by the application name."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("ALTER SYSTEM SET log_line_prefix = '%a|'")
        await conn.execute("SELECT pg_reload_conf()")
        for role in roles:
            await conn.execute(f"ALTER ROLE \"{role}\" SET log_statement = 'all'")
    finally:
        await conn.close()


def statements_of(log: Path, run: Any) -> list[str]:
    """The statements the services sent to PostgreSQL while `run()` ran (one warm request)."""
    run()  # warm: connections open, statements prepared
    time.sleep(0.3)
    start = log.stat().st_size
    run()
    time.sleep(0.5)  # the server writes its log asynchronously
    with log.open("rb") as handle:
        handle.seek(start)
        lines = handle.read().decode(errors="replace").splitlines()
    found = []
    for line in lines:
        match = re.match(r"^(api|auth)\|.*?LOG:\s+(statement|execute [^:]*): (.*)$", line)
        if match:
            found.append(f"{match.group(1)}: {match.group(3)}")
    return found


def redis_commands_of(redis_url: str, run: Any) -> list[str]:
    """The commands the services sent to Redis while `run()` ran (one warm request), in order:
    one per round trip (MONITOR; what scripts run inside Redis is left out)."""
    run()  # warm: scripts loaded, connections open
    sent = []
    with Redis.from_url(redis_url, socket_timeout=1) as client, client.monitor() as monitor:
        run()
        while True:
            try:
                seen = monitor.next_command()
            except RedisTimeoutError:
                break
            if seen["client_type"] != "lua":
                sent.append(str(seen["command"]).split(" ", 1)[0].upper())
    return sent


async def _refresh_rate(url: str, origin: str, cookies: list[str], seconds: float) -> dict[str, Any]:
    """Each session refreshes its own token in a loop (a refresh token is single use)."""
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds

    async def session(token: str) -> None:
        nonlocal done, errors
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while time.perf_counter() < deadline:
                response = await client.post(
                    "/api/v1/auth/refresh", headers={"Origin": origin, "Cookie": f"{REFRESH_COOKIE}={token}"}
                )
                if response.status_code != 200:
                    errors += 1
                    return
                token = response.cookies[REFRESH_COOKIE]
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(session(token) for token in cookies))
    return {"requests": done, "rps": done / (time.perf_counter() - started), "errors": errors}


def _refused_logins(url: str, seconds: float, connections: int, tmp: Path) -> dict[str, Any]:
    script = tmp / "login.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.body = \'{"email": "nobody@example.com", "password": "wrong password 123"}\'\n'
    )
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("the refused-login measurement needs wrk (apt-get install wrk)")
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()

    with bench_run() as setup:
        tmp, database, redis_url, processes = setup.root, setup.database, setup.redis_url, setup.processes
        pg_log = tmp / "pg" / "postgres.log"
        if pg_log.exists():
            asyncio.run(_log_statements(database.admin_url, [database.roles.api, database.roles.auth]))
        ports = {name: free_port() for name in ("auth", "limited", "api", "hello")}
        origin = f"http://127.0.0.1:{ports['auth']}"
        prefix = f"bench{secrets.token_hex(3)}:"
        common = {
            "ENV": "development",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "COOKIE_SECURE": "false",
            "APP_BASE_URL": origin,
            "OTEL_TRACES_EXPORTER": "none",
        }
        auth_env = {
            **common,
            "SERVICE_NAME": "auth",
            "DATABASE_URL": database.auth_url,
            "JWT_PRIVATE_KEYS": generate_seed(),
            "RATELIMIT_AUTH_IP_PER_MINUTE": HIGH,
            "RATELIMIT_AUTH_EMAIL_PER_HOUR": HIGH,
            "RATELIMIT_AUTH_MAILS_PER_ADDRESS_PER_HOUR": HIGH,
            "RATELIMIT_AUTH_REFRESH_IP_PER_MINUTE": HIGH,
        }
        limited_env = {**auth_env, "RATELIMIT_AUTH_IP_PER_MINUTE": "1", "REDIS_KEY_PREFIX": prefix + "l:"}
        api_env = {
            **common,
            "SERVICE_NAME": "api",
            "DATABASE_URL": database.api_url,
            "JWKS_URL": f"{origin}/api/v1/auth/.well-known/jwks.json",
            "RATELIMIT_ORG_PER_HOUR": HIGH,
            "RATELIMIT_USER_PER_HOUR": HIGH,
            "RATELIMIT_USER_ENDPOINT_PER_MINUTE": HIGH,
        }
        servers = {
            "auth": start_uvicorn("services.auth.main:app", ports["auth"], auth_env, tmp / "auth.log"),
            "limited": start_uvicorn(
                "services.auth.main:app", ports["limited"], limited_env, tmp / "limited.log"
            ),
            "api": start_uvicorn("services.api.main:app", ports["api"], api_env, tmp / "api.log"),
            "hello": start_uvicorn("bench.hello_apps:fastapi", ports["hello"], {}, tmp / "hello.log"),
        }
        processes.extend(servers.values())
        for name in servers:
            wait_for_port(ports[name], timeout=60)

        auth = httpx.Client(base_url=origin, timeout=60)
        api = httpx.Client(base_url=f"http://127.0.0.1:{ports['api']}", timeout=60)
        email = f"bench-{secrets.token_hex(4)}@example.com"
        create_verified_account(auth, redis_url, prefix, email, PASSWORD)
        logins = [auth.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})]
        login = logins[0]
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        chain = {"token": login.cookies[REFRESH_COOKIE]}

        def refresh() -> None:
            response = auth.post(
                "/api/v1/auth/refresh",
                headers={"Origin": origin, "Cookie": f"{REFRESH_COOKIE}={chain['token']}"},
            )
            assert response.status_code == 200, response.text
            chain["token"] = response.cookies[REFRESH_COOKIE]

        created = api.post("/api/v1/api-keys", json={"name": "bench", "scopes": ["read"]}, headers=bearer)
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['key']}"}

        def get(path: str, headers: dict[str, str] = bearer) -> Any:
            def run() -> None:
                response = api.get(path, headers=headers)
                assert response.status_code == 200, response.text

            return run

        paths = (
            ("GET /api/v1/me", get("/api/v1/me")),
            ("GET /api/v1/org", get("/api/v1/org")),
            ("GET /api/v1/users", get("/api/v1/users")),
            ("GET /api/v1/me (API key)", get("/api/v1/me", key)),
            ("GET /api/v1/users (API key)", get("/api/v1/users", key)),
            ("POST /api/v1/auth/refresh", refresh),
        )

        print(f"{os.cpu_count()} CPUs; load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        if pg_log.exists():
            print("statements PostgreSQL received for one warm request (log_statement = all):")
            for label, run in paths:
                found = statements_of(pg_log, run)
                print(f"  {label}: {len(found)} statement(s)")
                for statement in found:
                    print(f"    {statement[:400]}")
        else:
            print("(statements: only with the embedded PostgreSQL, whose log this script reads)")
        print("Redis commands sent for one warm request (MONITOR, in order):")
        for label, run in paths:
            commands = redis_commands_of(redis_url, run)
            print(f"  {label}: {len(commands)} command(s): {' '.join(commands)}")

        # Sessions for the refresh measurement: one login each (single-use refresh tokens).
        cookies = []
        for _ in range(args.sessions):
            response = auth.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert response.status_code == 200, response.text
            cookies.append(response.cookies[REFRESH_COOKIE])
        auth_pid = [servers["auth"].pid]
        before = cpu_seconds(auth_pid)
        refreshed = asyncio.run(_refresh_rate(origin, origin, cookies, args.seconds))
        refreshed["cpu_ms_per_request"] = (
            (cpu_seconds(auth_pid) - before) * 1000 / max(1, refreshed["requests"])
        )
        print(
            f"POST /auth/refresh, {args.sessions} sessions: {refreshed['rps']:.0f} req/s, "
            f"auth cpu/req {refreshed['cpu_ms_per_request']:.3f} ms, failed {refreshed['errors']}"
        )

        limited_url = f"http://127.0.0.1:{ports['limited']}/api/v1/auth/login"
        hello_url = f"http://127.0.0.1:{ports['hello']}/"
        run_load(hello_url, None, 1, args.connections)  # warm-up
        pid = [servers["limited"].pid]
        before = cpu_seconds(pid)
        refused = _refused_logins(limited_url, args.seconds, args.connections, tmp)
        refused["cpu_ms_per_request"] = (cpu_seconds(pid) - before) * 1000 / max(1, refused["requests"])
        before = cpu_seconds([servers["hello"].pid])
        hello = run_load(hello_url, None, args.seconds, args.connections)
        hello["cpu_ms_per_request"] = (
            (cpu_seconds([servers["hello"].pid]) - before) * 1000 / hello["requests"]
        )
        for label, r in (("refused login (429)", refused), ("fastapi hello", hello)):
            print(
                f"  {label:20s} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms"
                f"  p99 {r['p99_ms']:7.2f} ms  cpu/req {r['cpu_ms_per_request']:6.3f} ms"
                f"  non-2xx {r['non2xx']}"
            )
        print(
            f"  refused login : fastapi hello = {refused['rps'] / hello['rps']:.2f} (req/s), "
            f"{refused['cpu_ms_per_request'] / hello['cpu_ms_per_request']:.2f}x (cpu/req)"
        )
        print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
