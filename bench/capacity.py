"""Capacity: what one vCPU of BlockBot serves, on an empty database and at scale, every process counted.

    .venv/bin/python bench/capacity.py [--scale 1.0 | --small] [--seconds 10] [--connections 32]
                                       [--only refresh,me] [--out PATH]   # make bench-capacity

Starts the stack as `make run` runs it (PostgreSQL, Redis, auth and api under uvicorn with the
settings' defaults: pool, Argon2 parameters, logging), except rate limits raised out of the way
and no Traefik (the services are driven directly). A second auth process runs with OWASP's
minimum Argon2id (m=19 MiB, t=2, p=1) for the login figure the targets are stated at.

For every operation (password login at both Argon2 settings, refresh, `GET /me` with a token
and with an API key, a members page and an audit-log page deep in their cursors, sign-up,
logout) it measures, from a load generator in its own process (bench/loadgen.py):

* saturation: `--connections` clients back to back: requests/s, p50, p99;
* a fixed rate below saturation (half of the empty database's saturation rate): p50, p99;
* CPU per request: user+system time of EVERY process of the stack (both auth processes, api,
  all PostgreSQL backends and its postmaster, Redis) from /proc, over the saturation run, the
  load generator excluded; `per vCPU-s` = 1 / that;

first on an empty database, then after generating the data at scale in SQL (`--scale 1`:
10,000 orgs, 1,000,000 users, 2,000,000 sessions, 10,000,000 audit events, 100,000 API keys,
100,000 invitations and sign-up attempts; the probe's own org holds a tenth of the users and
events), giving the big/empty ratios. Then: the hot queries as the RLS-bound api role vs the
same SQL as a superuser (RLS bypassed), by round trip and by server time; RSS of each process
idle and at saturation; Redis bytes per key kind; the housekeeping purge of dead sessions
(services/auth/housekeeping, at each `--purge-batches` ceiling) while `GET /me` load runs,
with each batch's server time (one autocommit statement: how long it holds its locks); a
FastAPI hello-world's CPU per request as this machine's reference; Keycloak's published figures
and bare argon2-cffi hashes per CPU-second at the same parameters. Prints the table, writes
`<out>.json` and `<out>.png` (matplotlib, the `bench` extra; `--out` defaults to
.dev/bench-capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench.api_me import _tree, cpu_seconds  # noqa: E402
from bench.servers import bench_run, start_uvicorn  # noqa: E402
from devstack.ports import free_port, wait_for_port  # noqa: E402
from services.api.pagination import encode_cursor  # noqa: E402
from services.auth.keys import generate_seed  # noqa: E402
from shared.api_keys import generate_key  # noqa: E402
from shared.settings import Settings  # noqa: E402

PASSWORD = "capacity benchmark password"
HIGH = str(10**9)
PAGE_SIZE = 4096
# Keycloak's published sizing (keycloak.org/high-availability/concepts-memory-and-cpu-sizing):
# per vCPU per second, Argon2id m=7 MiB t=5 p=1 for password logins.
KEYCLOAK = {"login": 15.0, "refresh": 120.0}
OWASP = {"ARGON2_MEMORY_KIB": "19456", "ARGON2_TIME_COST": "2", "ARGON2_PARALLELISM": "1"}
DEFAULTS = Settings.model_fields
DEFAULT_ARGON2 = (
    int(DEFAULTS["argon2_memory_kib"].default),
    int(DEFAULTS["argon2_time_cost"].default),
    int(DEFAULTS["argon2_parallelism"].default),
)
OWASP_ARGON2 = (19456, 2, 1)


# --- the data ------------------------------------------------------------------------------------
def dataset_sql(scale: float) -> list[tuple[str, str]]:
    """(what, SQL) steps generating the data at `scale`; org 1 is the probe's (a tenth of it all)."""
    orgs = max(10, int(10_000 * scale))
    users = max(100, int(1_000_000 * scale))
    events = max(1_000, int(10_000_000 * scale))
    keys = max(10, int(100_000 * scale))
    rest = max(10, int(100_000 * scale))
    org = "('c0000000-0000-0000-0000-' || lpad(to_hex({}), 12, '0'))::uuid"
    # Users, events and keys of org 1 (the probe's) are one in ten; others spread round robin.
    pick = "CASE WHEN {n} % 10 = 0 THEN 1 ELSE 2 + {n} % " + str(orgs - 1) + " END"
    return [
        (
            "orgs",
            f"INSERT INTO organizations (id, name) SELECT {org.format('o')}, 'Org ' || o"
            f" FROM generate_series(2, {orgs}) o",
        ),
        (
            "users",
            "INSERT INTO users (org_id, email, name, role, password_hash, email_verified_at,"
            f" created_at) SELECT {org.format(pick.format(n='u'))}, 'u' || u || '@scale.example',"
            " 'User ' || u, 'member', 'x', now(), now() - make_interval(secs => u)"
            f" FROM generate_series(1, {users}) u",
        ),
        # Two sessions a user; one in ten dead for a month (what the hourly purge finds).
        (
            "sessions",
            "INSERT INTO sessions (org_id, user_id, token_hash, expires_at, created_at)"
            " SELECT u.org_id, u.id, sha256(('s' || n || u.id)::bytea),"
            " now() + CASE WHEN (hashtext(u.id::text) + n) % 10 = 0 THEN interval '-30 days'"
            " ELSE interval '7 days' END, now() FROM users u, generate_series(1, 2) n"
            " WHERE u.email LIKE '%@scale.example'",
        ),
        (
            "audit events",
            "INSERT INTO audit_log (org_id, action, target_type, target_id, created_at)"
            f" SELECT {org.format(pick.format(n='e'))}, 'user.login', 'user', e::text, now()"
            f" FROM generate_series(1, {events}) e",
        ),
        (
            "api keys",
            "INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes)"
            f" SELECT {org.format(pick.format(n='k'))}, lpad(to_hex(k + 1000000), 16, '0'),"
            f" sha256(('k' || k)::bytea), 'key ' || k, ARRAY['read'] FROM generate_series(1, {keys}) k",
        ),
        (
            "invitations",
            "INSERT INTO invitations (org_id, email, role, expires_at)"
            f" SELECT {org.format(pick.format(n='i'))}, 'i' || i || '@scale.example', 'member',"
            f" now() + interval '7 days' FROM generate_series(1, {rest}) i",
        ),
        (
            "sign-up attempts",
            "INSERT INTO signup_attempts (email, token_hash, password_hash, name,"
            " org_name, expires_at) SELECT 'a' || a || '@scale.example', sha256(('a' || a)::bytea), 'x',"
            f" 'A', 'A', now() + interval '1 day' FROM generate_series(1, {rest}) a",
        ),
        ("analyze", "ANALYZE"),
    ]


def refresh_token(n: int) -> tuple[str, str]:
    """A refresh token the bench can present and its stored hash (hex): sha256 of its raw bytes."""
    raw = hashlib.sha256(f"bench-session-{n}".encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), hashlib.sha256(raw).hexdigest()


@dataclass
class Probe:
    """The probe org (org 1) and what the load presents."""

    org_id: uuid.UUID
    owner_email: str
    login_emails: dict[str, list[str]]  # by Argon2 setting
    api_key: str = ""
    chain_sessions: list[str] = field(default_factory=list)
    logout_sessions: list[str] = field(default_factory=list)
    next_session: int = 0


async def seed_probe(admin_url: str, hash_secret: str, connections: int) -> Probe:
    from argon2 import PasswordHasher

    hashes = {
        "default": PasswordHasher(
            memory_cost=DEFAULT_ARGON2[0], time_cost=DEFAULT_ARGON2[1], parallelism=DEFAULT_ARGON2[2]
        ).hash(PASSWORD),
        "owasp": PasswordHasher(
            memory_cost=OWASP_ARGON2[0], time_cost=OWASP_ARGON2[1], parallelism=OWASP_ARGON2[2]
        ).hash(PASSWORD),
    }
    conn = await asyncpg.connect(admin_url)
    try:
        org_id = uuid.UUID("c0000000-0000-0000-0000-000000000001")
        await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Probe')", org_id)
        owner = "owner@probe.example"
        await conn.execute(
            "INSERT INTO users (org_id, email, name, role, password_hash, email_verified_at)"
            " VALUES ($1, $2, 'Owner', 'owner', $3, now())",
            org_id,
            owner,
            hashes["owasp"],
        )
        emails: dict[str, list[str]] = {}
        for kind, password_hash in hashes.items():
            emails[kind] = [f"{kind}{i}@probe.example" for i in range(connections)]
            await conn.executemany(
                "INSERT INTO users (org_id, email, name, role, password_hash, email_verified_at)"
                " VALUES ($1, $2, 'Member', 'member', $3, now())",
                [(org_id, email, password_hash) for email in emails[kind]],
            )
        key = generate_key("test", hash_secret.encode())
        await conn.execute(
            "INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes)"
            " VALUES ($1, $2, $3, 'bench', ARRAY['read'])",
            org_id,
            key.public_id,
            key.secret_hash,
        )
    finally:
        await conn.close()
    return Probe(org_id, owner, emails, api_key=key.token)


async def add_sessions(admin_url: str, probe: Probe, count: int) -> list[str]:
    """`count` live sessions of the probe's owner whose refresh tokens the bench knows."""
    first = probe.next_session
    probe.next_session += count
    tokens = [refresh_token(n) for n in range(first, first + count)]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "INSERT INTO sessions (org_id, user_id, token_hash, expires_at)"
            " SELECT $1, u.id, decode(h, 'hex'), now() + interval '7 days'"
            " FROM users u, unnest($2::text[]) h WHERE u.email = $3",
            probe.org_id,
            [digest for _, digest in tokens],
            probe.owner_email,
        )
    finally:
        await conn.close()
    return [token for token, _ in tokens]


# --- processes, CPU and memory ------------------------------------------------------------------
@dataclass
class StackProcesses:
    roots: dict[str, int]  # name -> root pid (its descendants belong to it)

    def pids(self) -> dict[str, list[int]]:
        return {name: _tree(pid) for name, pid in self.roots.items()}

    def cpu(self) -> float:
        return cpu_seconds(list(self.roots.values()))

    def cpu_by_process(self) -> dict[str, float]:
        return {name: cpu_seconds([pid]) for name, pid in self.roots.items()}

    def rss_mib(self) -> dict[str, float]:
        """Memory of each process tree: the sum of its processes' PSS (shared pages, such as
        PostgreSQL's shared buffers, divided among the processes mapping them, so the sum over
        backends counts them once), falling back to RSS where PSS is not readable."""
        found: dict[str, float] = {}
        for name, pids in self.pids().items():
            total = 0
            for pid in pids:
                total += _pss_bytes(pid)
            found[name] = total / 2**20
        return found


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except OSError:
        return 0


def redis_pid(port: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "redis-server" in command and str(port) in command:
            return int(entry.name)
    return None


@contextmanager
def rss_peak(stack: StackProcesses, peak: dict[str, float]) -> Iterator[None]:
    """Sample every process's RSS twice a second meanwhile, keeping the maximum in `peak`."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for name, mib in stack.rss_mib().items():
                peak[name] = max(peak.get(name, 0.0), mib)
            stop.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load generator on `spec`; a failed run is shown (its stderr) and tried once more."""
    for attempt in (1, 2):
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "loadgen.py")],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if out.returncode == 0:
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            return result
        print(f"load generator failed (try {attempt}): {out.stderr.strip()[-2000:]}", flush=True)
    raise RuntimeError("the load generator failed twice")


# --- the operations ---------------------------------------------------------------------------
@dataclass
class Operation:
    name: str
    port: str  # which server: auth, auth_owasp, api
    method: str
    path: Callable[[], str]
    spec: Callable[[int], dict[str, Any]]  # extra spec given the number of requests it may need
    ok: tuple[int, ...] = (200,)
    # Password hashing runs PASSWORD_HASH_CONCURRENCY at a time: more clients only queue.
    hashes: bool = False


def measure(
    stack: StackProcesses,
    ports: dict[str, int],
    op: Operation,
    mode: str,
    seconds: float,
    connections: int,
    rate: float,
    peak: dict[str, float],
) -> dict[str, Any]:
    budget = int((rate if mode == "rate" else 2000) * seconds * 1.2) + connections
    spec = {
        "host": "127.0.0.1",
        "port": ports[op.port],
        "method": op.method,
        "path": op.path(),
        "mode": mode,
        "connections": connections,
        "seconds": seconds,
        "rate": rate,
        "ok": list(op.ok),
        **op.spec(budget),
    }
    before = stack.cpu_by_process()
    with rss_peak(stack, peak):
        result = load(spec)
        settle(stack)
    after = stack.cpu_by_process()
    served = max(1, result["requests"])
    result["cpu_ms_by_process"] = {name: (after[name] - before[name]) * 1000 / served for name in after}
    result["cpu_ms_per_request"] = sum(result["cpu_ms_by_process"].values())
    result["per_vcpu_s"] = 1000 / result["cpu_ms_per_request"] if result["cpu_ms_per_request"] else 0.0
    return result


def settle(stack: StackProcesses, limit: float = 180.0) -> None:
    """Wait until the stack is idle (under 2% of a CPU over half a second, at most `limit` s):
    work a request leaves behind belongs to it (sign-up answers 202 and hashes the password
    after the response: at saturation a backlog of hashes outlives the load by seconds)."""
    deadline = time.monotonic() + limit
    last = stack.cpu()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = stack.cpu()
        if now - last < 0.01:
            return
        last = now


def argon2_bare(params: tuple[int, int, int], count: int) -> dict[str, float]:
    """argon2-cffi alone: hashes per CPU-second (all its threads) and per wall second."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(memory_cost=params[0], time_cost=params[1], parallelism=params[2])
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        hasher.hash(PASSWORD)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"per_cpu_s": count / cpu, "per_s": count / wall, "cpu_ms": cpu * 1000 / count}


async def rls_vs_owner(
    database: Any, probe: Probe, member_key: tuple[Any, Any], before: int
) -> dict[str, Any]:
    """The hot statements as the api role (RLS) and as a superuser (RLS bypassed, the org filter
    written out), same data, same connection kind: the median round trip per execution of a
    prepared statement (as the services run them), and the server's own time per execution
    (`server_loop`: no network, no client, so the machine's other load weighs less)."""
    queries = {
        "me": (
            "SELECT u.email, u.name, u.role, u.email_verified_at, u.created_at, o.name, o.created_at,"
            " o.updated_at FROM users u JOIN organizations o ON o.id = u.org_id"
            " WHERE u.id = $1 AND u.disabled_at IS NULL {and_org}",
            [member_key[1]],
        ),
        "members page": (
            "SELECT id, email, name, role, created_at FROM users WHERE (created_at, id) > ($1, $2)"
            " {and_org} ORDER BY created_at, id LIMIT 51",
            list(member_key),
        ),
        "audit page": (
            "SELECT id::text, action, created_at FROM audit_log WHERE audit_log.id < $1 {and_org}"
            " ORDER BY audit_log.id DESC LIMIT 51",
            [before],
        ),
    }
    results: dict[str, Any] = {}
    api = await asyncpg.connect(database.api_url)
    admin = await asyncpg.connect(database.admin_url)
    try:
        for name, (sql, args) in queries.items():
            owner_sql = sql.format(and_org=f"AND {'u.' if name == 'me' else ''}org_id = ${len(args) + 1}")
            sides = (
                ("rls", api, sql.format(and_org=""), list(args)),
                ("owner", admin, owner_sql, [*args, probe.org_id]),
            )
            samples: dict[str, list[float]] = {"rls": [], "owner": []}
            transactions = [conn.transaction() for _, conn, _, _ in sides]
            for transaction in transactions:
                await transaction.start()
            try:
                statements = []
                for _, conn, text, _ in sides:
                    await conn.execute(f"SELECT set_config('app.current_org_id', '{probe.org_id}', true)")
                    statements.append(await conn.prepare(text))
                for _ in range(20):
                    for statement, (_, _, _, values) in zip(statements, sides, strict=True):
                        await statement.fetch(*values)
                # Interleaved, so the machine's other load weighs on both sides alike.
                for _ in range(300):
                    for statement, (label, _, _, values) in zip(statements, sides, strict=True):
                        began = time.perf_counter()
                        await statement.fetch(*values)
                        samples[label].append(time.perf_counter() - began)
            finally:
                for transaction in transactions:
                    await transaction.rollback()
            timings = {label: statistics.median(found) * 1000 for label, found in samples.items()}
            timings["ratio"] = timings["rls"] / timings["owner"]
            server: dict[str, list[float]] = {"rls": [], "owner": []}
            for _ in range(3):
                for label, conn, text, values in sides:
                    server[label].append(await server_loop(conn, text, values, probe.org_id))
            timings["rls_server_us"], timings["owner_server_us"] = min(server["rls"]), min(server["owner"])
            timings["server_ratio"] = timings["rls_server_us"] / timings["owner_server_us"]
            results[name] = timings
    finally:
        await api.close()
        await admin.close()
    return results


async def server_loop(conn: Any, sql: str, values: list[Any], org: uuid.UUID, count: int = 2000) -> float:
    """Microseconds of server time per execution of `sql` (its `$n` replaced by the literals of
    `values`, all generated by the bench) bound to `org`: a PL/pgSQL loop timed by the server."""
    text = sql
    for index in range(len(values), 0, -1):
        value = values[index - 1]
        text = text.replace(f"${index}", str(value) if isinstance(value, int) else f"'{value}'")
    notices: list[str] = []

    def listener(_conn: Any, message: Any) -> None:
        notices.append(message.message)

    conn.add_log_listener(listener)
    await conn.execute(
        "DO $loop$ DECLARE started timestamptz; BEGIN"
        f" PERFORM set_config('app.current_org_id', '{org}', true);"
        f" FOR i IN 1..50 LOOP PERFORM * FROM ({text}) q; END LOOP;"
        " started := clock_timestamp();"
        f" FOR i IN 1..{count} LOOP PERFORM * FROM ({text}) q; END LOOP;"
        f" RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - started) * 1e6 / {count};"
        " END $loop$"
    )
    for _ in range(100):
        if notices:
            break
        await asyncio.sleep(0.01)
    conn.remove_log_listener(listener)
    return float(notices[-1])


async def housekeeping_under_load(database: Any, batch: int) -> dict[str, Any]:
    """Purge dead sessions as the auth service does (services/auth/housekeeping: batches of at
    most `batch` rows across orgs, one autocommit statement each, sized to a time budget). A
    batch's row locks live only during its statement: its server time (statement start to the
    purge's end, as the service records it) is how long it holds them, before its commit."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.auth.housekeeping.service import purge_sessions
    from shared.db import create_sessionmaker

    engine = create_async_engine(database.auth_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    times: list[float] = []
    started = time.perf_counter()
    try:
        deleted, _ = await purge_sessions(
            create_sessionmaker(engine), keep_seconds=0, batch=batch, seconds=times
        )
    finally:
        await engine.dispose()
    elapsed = time.perf_counter() - started
    times.sort()
    return {
        "deleted": deleted,
        "transactions": len(times),
        "seconds": elapsed,
        "max_lock_ms": times[-1] * 1000 if times else 0.0,
        "p99_lock_ms": times[int(0.99 * (len(times) - 1))] * 1000 if times else 0.0,
        "over_100ms": sum(1 for t in times if t > 0.1),
        "batch": batch,
    }


async def kill_sessions(admin_url: str, residue: int) -> None:
    """Make one session in ten dead for a month (what an hourly purge finds after an outage)."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '30 days'"
            " WHERE abs(hashtext(id::text)) % 10 = $1",
            residue,
        )
    finally:
        await conn.close()


def redis_bytes(redis_url: str, prefix: str) -> dict[str, Any]:
    """MEMORY USAGE of the stack's keys by kind (rate-limit window scope, revocation markers)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    kinds: dict[str, list[int]] = {}
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            name = key.decode()[len(prefix) :]
            parts = name.split(":")
            kind = ":".join(parts[:2]) if parts[0] in ("rl", "auth") else parts[0]
            if len(kinds.setdefault(kind, [])) < 200:
                usage = cast(int | None, client.memory_usage(key))  # the sync client
                kinds[kind].append(int(usage or 0))
            else:
                kinds[kind].append(-1)
        used = cast(dict[str, Any], client.info("memory"))["used_memory"]
    finally:
        client.close()
    return {
        "used_memory": used,
        "kinds": {
            kind: {"keys": len(sizes), "bytes_per_key": statistics.mean(s for s in sizes if s >= 0)}
            for kind, sizes in kinds.items()
        },
    }


# --- the run -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 10,000 orgs, 1M users, 10M events")
    parser.add_argument("--small", action="store_true", help="scale 0.01 and 3 s measurements (a minute)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--out", type=Path, default=ROOT / ".dev" / "bench-capacity", help="writes OUT.json and OUT.png"
    )
    parser.add_argument(
        "--only", default="", help="only the operations whose names contain one of these (comma-separated)"
    )
    parser.add_argument("--profile", default="", help="py-spy the server of this operation (empty database)")
    parser.add_argument("--purge-batches", default="1000,250", help="housekeeping batch sizes to measure")
    args = parser.parse_args()
    if args.small:
        args.scale, args.seconds = 0.01, 3.0
    report: dict[str, Any] = {
        "scale": args.scale,
        "seconds": args.seconds,
        "connections": args.connections,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    with bench_run() as run:
        root, database, redis_url = run.root, run.database, run.redis_url
        hash_secret = secrets.token_urlsafe(32)
        prefix = f"cap{secrets.token_hex(3)}:"
        ports = {name: free_port() for name in ("auth", "auth_owasp", "api", "hello")}
        origin = f"http://127.0.0.1:{ports['auth']}"
        common = {
            "ENV": "development",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "COOKIE_SECURE": "false",
            "APP_BASE_URL": origin,
            "OTEL_TRACES_EXPORTER": "none",
            "BLOCKBOT_ENV_FILE": "",
        }
        limits = {
            "RATELIMIT_AUTH_IP_PER_MINUTE": HIGH,
            "RATELIMIT_AUTH_EMAIL_PER_HOUR": HIGH,
            "RATELIMIT_AUTH_MAILS_PER_ADDRESS_PER_HOUR": HIGH,
            "RATELIMIT_AUTH_REFRESH_IP_PER_MINUTE": HIGH,
            "RATELIMIT_ORG_PER_HOUR": HIGH,
            "RATELIMIT_USER_PER_HOUR": HIGH,
            "RATELIMIT_USER_ENDPOINT_PER_MINUTE": HIGH,
        }
        seed = generate_seed()
        auth_env = {
            **common,
            **limits,
            "SERVICE_NAME": "auth",
            "DATABASE_URL": database.auth_url,
            "JWT_PRIVATE_KEYS": seed,
        }
        api_env = {
            **common,
            **limits,
            "SERVICE_NAME": "api",
            "DATABASE_URL": database.api_url,
            "JWKS_URL": f"{origin}/api/v1/auth/.well-known/jwks.json",
            "API_KEY_HASH_SECRET": hash_secret,
        }
        servers = {
            "auth": start_uvicorn("services.auth.main:app", ports["auth"], auth_env, root / "auth.log"),
            "auth_owasp": start_uvicorn(
                "services.auth.main:app", ports["auth_owasp"], {**auth_env, **OWASP}, root / "auth2.log"
            ),
            "api": start_uvicorn("services.api.main:app", ports["api"], api_env, root / "api.log"),
            "hello": start_uvicorn("bench.hello_apps:fastapi", ports["hello"], {}, root / "hello.log"),
        }
        run.processes.extend(servers.values())
        for name in servers:
            wait_for_port(ports[name], timeout=120)
        roots = {name: servers[name].pid for name in ("auth", "auth_owasp", "api")}
        postmaster = root / "pg" / "data" / "postmaster.pid"
        if postmaster.exists():
            roots["postgres"] = int(postmaster.read_text().split()[0])
        redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        if (pid := redis_pid(redis_port)) is not None:
            roots["redis"] = pid
        stack = StackProcesses(roots)
        hello = StackProcesses({"hello": servers["hello"].pid})
        report["counted_processes"] = sorted(roots)
        if "postgres" not in roots or "redis" not in roots:
            print("WARNING: PostgreSQL or Redis is not ours (BENCH_*_URL): their CPU is not counted")

        probe = asyncio.run(seed_probe(database.admin_url, hash_secret, args.connections))
        auth = httpx.Client(base_url=origin, timeout=120)

        def access_token() -> str:
            response = auth.post(
                "/api/v1/auth/login", json={"email": probe.owner_email, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            return str(response.json()["access_token"])

        cursors: dict[str, Any] = {"members": "", "audit": ""}

        def login_spec(kind: str) -> Callable[[int], dict[str, Any]]:
            bodies = [json.dumps({"email": e, "password": PASSWORD}) for e in probe.login_emails[kind]]
            return lambda _budget: {"bodies": bodies}

        def chain_spec(_budget: int) -> dict[str, Any]:
            return {
                "cookie_mode": "chain",
                "cookies": asyncio.run(add_sessions(database.admin_url, probe, args.connections)),
            }

        def logout_spec(budget: int) -> dict[str, Any]:
            return {
                "cookie_mode": "consume",
                "cookies": asyncio.run(add_sessions(database.admin_url, probe, min(budget, 40_000))),
            }

        bearer: dict[str, str] = {}

        def api_spec(which: str) -> Callable[[int], dict[str, Any]]:
            return lambda _budget: {"headers": {"Authorization": f"Bearer {bearer[which]}"}}

        signup_tag = secrets.token_hex(3)
        operations = [
            Operation(
                "login (OWASP argon2)",
                "auth_owasp",
                "POST",
                lambda: "/api/v1/auth/login",
                login_spec("owasp"),
                hashes=True,
            ),
            Operation(
                "login (default argon2)",
                "auth",
                "POST",
                lambda: "/api/v1/auth/login",
                login_spec("default"),
                hashes=True,
            ),
            Operation("refresh", "auth", "POST", lambda: "/api/v1/auth/refresh", chain_spec),
            Operation("GET /me token", "api", "GET", lambda: "/api/v1/me", api_spec("token")),
            Operation("GET /me API key", "api", "GET", lambda: "/api/v1/me", api_spec("key")),
            Operation(
                "members page",
                "api",
                "GET",
                lambda: f"/api/v1/users?limit=50&cursor={cursors['members']}",
                api_spec("token"),
            ),
            Operation(
                "audit-log page",
                "api",
                "GET",
                lambda: f"/api/v1/audit-log?limit=50&cursor={cursors['audit']}",
                api_spec("token"),
            ),
            Operation(
                "sign-up (OWASP argon2)",
                "auth_owasp",
                "POST",
                lambda: "/api/v1/auth/register",
                lambda _b: {
                    "bodies": [
                        json.dumps(
                            {
                                "email": f"s{signup_tag}-{{n}}-{secrets.token_hex(2)}@signup.example",
                                "password": PASSWORD,
                                "name": "S",
                                "org_name": "S",
                            }
                        )
                    ]
                },
                ok=(202,),
                hashes=True,
            ),
            Operation("logout", "auth", "POST", lambda: "/api/v1/auth/logout", logout_spec, ok=(204,)),
        ]

        if args.only:
            wanted = args.only.split(",")
            operations = [op for op in operations if any(w in op.name for w in wanted)]

        def set_cursors() -> None:
            async def find() -> tuple[tuple[Any, Any], int]:
                conn = await asyncpg.connect(database.admin_url)
                try:
                    count = await conn.fetchval("SELECT count(*) FROM users WHERE org_id = $1", probe.org_id)
                    member = await conn.fetchrow(
                        "SELECT created_at, id FROM users WHERE org_id = $1 ORDER BY created_at, id"
                        " OFFSET $2 LIMIT 1",
                        probe.org_id,
                        count // 2,
                    )
                    events = await conn.fetchval(
                        "SELECT count(*) FROM audit_log WHERE org_id = $1", probe.org_id
                    )
                    event = await conn.fetchval(
                        "SELECT id FROM audit_log WHERE org_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1",
                        probe.org_id,
                        events // 2,
                    )
                finally:
                    await conn.close()
                assert member is not None
                return (member["created_at"], member["id"]), int(event or 10**12) + 1

            member, before = asyncio.run(find())
            cursors["members"] = encode_cursor(member[0].isoformat(), member[1])
            cursors["audit"] = encode_cursor(before)
            cursors["member_key"], cursors["before"] = member, before

        peaks: dict[str, dict[str, float]] = {}
        rates: dict[str, float] = {}

        def phase(label: str) -> dict[str, Any]:
            set_cursors()
            bearer["token"], bearer["key"] = access_token(), probe.api_key
            results: dict[str, Any] = {}
            peak = peaks.setdefault(label, {})
            for op in operations:
                load(
                    {
                        "host": "127.0.0.1",
                        "port": ports[op.port],
                        "method": op.method,
                        "path": op.path(),
                        "mode": "closed",
                        "connections": 4,
                        "seconds": 1,
                        "ok": list(op.ok),
                        **op.spec(400),
                    }
                )
                clients = 8 if op.hashes else args.connections
                sampler = None
                if args.profile and args.profile in op.name and label == "empty":
                    from bench import pyspy

                    sampler = pyspy.record(servers[op.port].pid, args.seconds, root / "profile.txt")
                saturated = measure(stack, ports, op, "closed", args.seconds, clients, 0, peak)
                if sampler is not None:
                    sampler.wait()
                    print("\n".join(pyspy.summarize(root / "profile.txt")))
                rate = rates.setdefault(op.name, max(0.5, round(saturated["rps"] / 2, 1)))
                steady = measure(stack, ports, op, "rate", args.seconds, clients, rate, peak)
                results[op.name] = {"saturation": saturated, "rate": steady}
                print(
                    f"  [{label}] {op.name:24s} sat {saturated['rps']:7.1f}/s p50 {saturated['p50_ms']:7.1f}"
                    f" p99 {saturated['p99_ms']:7.1f} cpu {saturated['cpu_ms_per_request']:7.2f} ms"
                    f" | {rate:g}/s p50 {steady['p50_ms']:7.1f} p99 {steady['p99_ms']:7.1f}"
                    f" errors {saturated['errors'] or ''}{steady['errors'] or ''}"
                    f" | cpu by process {fmt_by_process(saturated['cpu_ms_by_process'])}",
                    flush=True,
                )
            return results

        # The reference: a FastAPI hello's CPU per request on this machine, same generator.
        load(
            {
                "host": "127.0.0.1",
                "port": ports["hello"],
                "method": "GET",
                "path": "/",
                "mode": "closed",
                "connections": 4,
                "seconds": 1,
            }
        )
        before = hello.cpu()
        hello_result = load(
            {
                "host": "127.0.0.1",
                "port": ports["hello"],
                "method": "GET",
                "path": "/",
                "mode": "closed",
                "connections": args.connections,
                "seconds": args.seconds,
            }
        )
        hello_result["cpu_ms_per_request"] = (hello.cpu() - before) * 1000 / hello_result["requests"]
        report["hello"] = hello_result
        print(
            f"fastapi hello: {hello_result['rps']:.0f}/s, cpu {hello_result['cpu_ms_per_request']:.3f} ms/req"
        )

        report["rss_idle_mib"] = stack.rss_mib()
        print("empty database:")
        report["empty"] = phase("empty")

        print(f"generating data at scale {args.scale:g} in SQL:")
        generated: dict[str, float] = {}

        async def generate() -> None:
            conn = await asyncpg.connect(database.admin_url)
            try:
                for what, sql in dataset_sql(args.scale):
                    started = time.perf_counter()
                    await conn.execute(sql)
                    generated[what] = time.perf_counter() - started
                    print(f"  {what}: {generated[what]:.1f} s", flush=True)
            finally:
                await conn.close()

        asyncio.run(generate())
        report["generation_seconds"] = generated
        report["rss_idle_big_mib"] = stack.rss_mib()
        print("at scale:")
        report["big"] = phase("big")
        report["rss_peak_mib"] = peaks

        member_key, before_id = cursors["member_key"], cursors["before"]
        report["rls"] = asyncio.run(rls_vs_owner(database, probe, member_key, before_id))

        # Housekeeping at scale while GET /me load runs.
        spec = {
            "host": "127.0.0.1",
            "port": ports["api"],
            "method": "GET",
            "path": "/api/v1/me",
            "mode": "closed",
            "connections": args.connections,
            "seconds": 600,
            "headers": {"Authorization": f"Bearer {bearer['token']}"},
        }
        background = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "loadgen.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert background.stdin is not None
        background.stdin.write(json.dumps(spec))
        background.stdin.close()
        try:
            report["housekeeping"] = []
            for residue, batch in enumerate(int(b) for b in args.purge_batches.split(",")):
                asyncio.run(kill_sessions(database.admin_url, residue))
                report["housekeeping"].append(asyncio.run(housekeeping_under_load(database, batch)))
        finally:
            background.terminate()
            background.wait()

        report["redis"] = redis_bytes(redis_url, prefix)
        report["argon2_bare"] = {
            "default": argon2_bare(DEFAULT_ARGON2, 10),
            "owasp": argon2_bare(OWASP_ARGON2, 20),
        }
        report["load_average_after"] = os.getloadavg()
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data, picture = Path(f"{args.out}.json"), Path(f"{args.out}.png")
    data.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {data}")
    chart(report, picture)


def fmt_by_process(by: dict[str, float]) -> str:
    return " ".join(f"{name} {ms:.2f}" for name, ms in by.items())


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, big in report["big"].items():
        empty = report["empty"][name]
        sat = big["saturation"]
        row = {
            "operation": name,
            "per_vcpu_s": sat["per_vcpu_s"],
            "cpu_ms": sat["cpu_ms_per_request"],
            "sat_rps": sat["rps"],
            "sat_p50": sat["p50_ms"],
            "sat_p99": sat["p99_ms"],
            "rate": report["empty"][name]["rate"]["requests"] / report["empty"][name]["rate"]["seconds"],
            "rate_p50": big["rate"]["p50_ms"],
            "rate_p99": big["rate"]["p99_ms"],
            "big_empty_p50": big["rate"]["p50_ms"] / empty["rate"]["p50_ms"],
            "big_empty_cpu": sat["cpu_ms_per_request"] / empty["saturation"]["cpu_ms_per_request"],
            "keycloak": KEYCLOAK.get(name.split(" ")[0]),
        }
        rows.append(row)
    return rows


def print_table(report: dict[str, Any]) -> None:
    hello = report["hello"]["cpu_ms_per_request"]
    print()
    print(
        f"scale {report['scale']:g}, {report['cpus']} CPUs shared, {report['connections']} connections, "
        f"{report['seconds']:g} s per measurement; counted: {', '.join(report['counted_processes'])}"
    )
    print(f"reference: FastAPI hello {hello:.3f} ms CPU/request ({1000 / hello:.0f}/vCPU-s)")
    header = (
        f"{'operation':24s} {'/vCPU-s':>8s} {'cpu ms':>7s} {'x hello':>7s} {'sat/s':>7s} {'p50':>7s}"
        f" {'p99':>7s} {'@rate/s':>7s} {'p50':>7s} {'p99':>7s} {'big/empty p50':>13s} {'cpu':>5s}"
        f" {'Keycloak':>8s}"
    )
    print(header)
    for r in summary_rows(report):
        keycloak = f"{r['keycloak']:.0f}" if r["keycloak"] else "-"
        print(
            f"{r['operation']:24s} {r['per_vcpu_s']:8.1f} {r['cpu_ms']:7.2f} {r['cpu_ms'] / hello:7.1f}"
            f" {r['sat_rps']:7.1f} {r['sat_p50']:7.1f} {r['sat_p99']:7.1f} {r['rate']:7.1f}"
            f" {r['rate_p50']:7.1f} {r['rate_p99']:7.1f} {r['big_empty_p50']:13.2f}"
            f" {r['big_empty_cpu']:5.2f} {keycloak:>8s}"
        )
    print("(latencies in ms; the fixed rate is half the empty database's saturation rate, the same in both)")
    bare = report["argon2_bare"]
    logins = {r["operation"]: r for r in summary_rows(report)}
    for kind, op in (("owasp", "login (OWASP argon2)"), ("default", "login (default argon2)")):
        if op not in logins:
            continue
        fraction = logins[op]["per_vcpu_s"] / bare[kind]["per_cpu_s"]
        print(
            f"argon2-cffi bare, {kind}: {bare[kind]['per_cpu_s']:.1f} hashes/CPU-s"
            f" ({bare[kind]['cpu_ms']:.1f} ms); logins/vCPU-s are {fraction:.2f} of it"
        )
    print("RLS-bound vs superuser (same SQL, org filter written out), median ms per execution:")
    for name, t in report["rls"].items():
        print(
            f"  {name:14s} rls {t['rls']:.3f}  owner {t['owner']:.3f}  ratio {t['ratio']:.2f}"
            f" | server only: rls {t['rls_server_us']:.1f} us  owner {t['owner_server_us']:.1f} us"
            f"  ratio {t['server_ratio']:.2f}"
        )
    print("RSS MiB idle (empty) / idle (big) / peak under load (big):")
    for name, mib in report["rss_idle_mib"].items():
        print(
            f"  {name:10s} {mib:7.1f} {report['rss_idle_big_mib'].get(name, 0):7.1f}"
            f" {report['rss_peak_mib']['big'].get(name, 0):7.1f}"
        )
    redis = report["redis"]
    print(f"Redis: used_memory {redis['used_memory'] / 2**20:.1f} MiB; bytes per key by kind:")
    for kind, k in sorted(redis["kinds"].items()):
        print(
            f"  {kind:28s} {k['keys']:8d} keys  {k['bytes_per_key']:6.0f} B/key"
            f"  ({k['bytes_per_key'] * 100_000 / 2**20:.1f} MiB per 100,000)"
        )
    for h in report["housekeeping"]:
        print(
            f"housekeeping under GET /me load: {h['deleted']} dead sessions in {h['transactions']}"
            f" statements of <= {h['batch']} rows, {h['seconds']:.1f} s; longest batch (server time, locks"
            f" held) {h['max_lock_ms']:.1f} ms, p99 {h['p99_lock_ms']:.1f} ms, {h['over_100ms']} over 100 ms"
        )
    print("generation: " + ", ".join(f"{k} {v:.0f} s" for k, v in report["generation_seconds"].items()))


def chart(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no PNG: matplotlib is not installed (pip install -e '.[bench]')")
        return
    rows = summary_rows(report)
    names = [r["operation"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    left.barh(names, [r["per_vcpu_s"] for r in rows], label="BlockBot")
    keycloak = [(i, r["keycloak"]) for i, r in enumerate(rows) if r["keycloak"]]
    left.scatter([k for _, k in keycloak], [i for i, _ in keycloak], color="red", zorder=3, label="Keycloak")
    left.set_xscale("log")
    left.set_xlabel("requests per vCPU-second (every process counted), at scale")
    left.legend()
    left.invert_yaxis()
    right.barh(names, [r["big_empty_p50"] for r in rows], color="gray")
    right.axvline(1.2, color="red", linestyle="--")
    right.set_xlabel("p50 at the fixed rate, big / empty database")
    right.invert_yaxis()
    right.set_yticklabels([])
    fig.suptitle(f"BlockBot capacity, scale {report['scale']:g} ({report['cpus']} shared CPUs)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
