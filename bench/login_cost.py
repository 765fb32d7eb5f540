"""What a password login costs beside its Argon2 hash, every process of the stack counted.

    .venv/bin/python bench/login_cost.py [--seconds 8] [--connections 8] [--only owasp,default]
                                         [--rounds 2] [--before DIR] [--profile] [--json PATH]
                                         [--round-trips 20]

Starts PostgreSQL, Redis and one auth process per Argon2 setting (OWASP's minimum, m=19 MiB t=2
p=1, and the settings' defaults) as `bench/capacity.py` does (rate limits raised out of the
way, everything else the defaults), seeds the same probe users, and drives from a separate
load-generator process, `--connections` clients back to back (with `--before DIR`, also an
auth process per setting running DIR's code, e.g. the main branch, measured the same way):

* `login`: the right password (a session is opened);
* `wrong password`: a known address, a wrong password (the hash, no session);
* `unknown email`: an address without an account (the dummy hash);

For each: logins per vCPU-second over every process (auth, PostgreSQL, Redis), CPU per request
split into user and system time and by process, minor page faults per request, the CPU of the
loaded server's main thread (its event loop: everything but the hashing, which runs in the
pool's threads), and whether the stored hash needs a rehash at the service's parameters.
`--profile` samples the first server's logins with py-spy (samples holding the GIL only).

Round trips to PostgreSQL per request (`--round-trips N`, default 20; 0 skips): after the
measurements, one more auth process per server label, connected through a counting proxy (so the
measured servers never pay for it), serves N requests of each case one after the other; a round
trip is a message the client waits on (an extended-query Sync or a simple Query).

Beside it, on the same machine in the same run: bare argon2-cffi `PasswordHasher.verify` in a
loop, one thread per core (the conventional implementation), as verifications per CPU-second,
user and system time and page faults (before the first round, between rounds and after the
last); and the ratio logins / bare. `--rounds` repeats every measurement, servers interleaved,
and reports totals. Prints a table; `--json PATH` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.api_me import _tree  # noqa: E402
from bench.capacity import (  # noqa: E402
    DEFAULT_ARGON2,
    OWASP,
    OWASP_ARGON2,
    PASSWORD,
    load,
    redis_pid,
    seed_probe,
    settle,
)
from bench.servers import bench_run, start_uvicorn  # noqa: E402
from devstack.ports import free_port, wait_for_port  # noqa: E402
from services.auth.keys import generate_seed  # noqa: E402
from services.auth.passwords import Passwords  # noqa: E402
from shared.settings import Settings  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HIGH = "1000000000"
PARAMS = {"owasp": OWASP_ARGON2, "default": DEFAULT_ARGON2}
USAGE_KEYS = ("user", "sys", "minflt", "main_thread")
JSON = {"content-type": "application/json"}


def _stat(path: str) -> list[str] | None:
    try:
        return Path(path).read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def usage(roots: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per process tree: user and system CPU seconds and minor page faults so far, and the CPU
    of each root's main thread (a uvicorn service's event loop: all but the hashing)."""
    found: dict[str, dict[str, float]] = {}
    for name, root in roots.items():
        user = system = faults = 0.0
        for pid in _tree(root):
            if (fields := _stat(f"/proc/{pid}/stat")) is None:
                continue
            faults += int(fields[7])  # minflt (field 10)
            user += int(fields[11]) / CLOCK_TICKS
            system += int(fields[12]) / CLOCK_TICKS
        main = _stat(f"/proc/{root}/task/{root}/stat")
        loop = (int(main[11]) + int(main[12])) / CLOCK_TICKS if main else 0.0
        found[name] = {"user": user, "sys": system, "minflt": faults, "main_thread": loop}
    return found


def per_request(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], n: int
) -> dict[str, Any]:
    by_process = {
        name: {key: (after[name][key] - before[name][key]) / n for key in USAGE_KEYS} for name in after
    }
    user = sum(p["user"] for p in by_process.values())
    system = sum(p["sys"] for p in by_process.values())
    return {
        "cpu_ms": (user + system) * 1000,
        "user_ms": user * 1000,
        "sys_ms": system * 1000,
        "per_vcpu_s": 1 / (user + system) if user + system else 0.0,
        "minflt": sum(p["minflt"] for p in by_process.values()),
        "cpu_ms_by_process": {name: (p["user"] + p["sys"]) * 1000 for name, p in by_process.items()},
        "minflt_by_process": {name: p["minflt"] for name, p in by_process.items()},
        "main_thread_ms_by_process": {name: p["main_thread"] * 1000 for name, p in by_process.items()},
    }


class RoundTripProxy:
    """A TCP proxy to PostgreSQL counting the round trips its clients make: every Sync ('S')
    and simple Query ('Q') message a client sends (after a Sync or a Query, the client waits
    for ReadyForQuery). Runs its own event loop in a thread of this process."""

    SSL_REQUEST, GSS_REQUEST = 80877103, 80877104

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.count = 0
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_until_complete(server.serve_forever())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        async def from_client() -> None:
            to_client: asyncio.Task[None] | None = None
            try:
                # Untyped messages first (SSLRequest, GSSENCRequest, then StartupMessage); the
                # server's one-byte answer to a request is read here, before the pump starts.
                while True:
                    head = await reader.readexactly(8)
                    length, code = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
                    body = await reader.readexactly(length - 8)
                    upstream_writer.write(head + body)
                    await upstream_writer.drain()
                    if code not in (self.SSL_REQUEST, self.GSS_REQUEST):
                        break
                    answer = await upstream_reader.readexactly(1)
                    writer.write(answer)
                    await writer.drain()
                    if answer != b"N":  # encrypted from here on: passed on, not counted
                        to_client = asyncio.create_task(pump(upstream_reader, writer))
                        await pump(reader, upstream_writer)
                        return
                to_client = asyncio.create_task(pump(upstream_reader, writer))
                while True:
                    head = await reader.readexactly(5)
                    body = await reader.readexactly(int.from_bytes(head[1:], "big") - 4)
                    if head[:1] in (b"S", b"Q"):
                        self.count += 1
                    upstream_writer.write(head + body)
                    await upstream_writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                upstream_writer.close()
                if to_client is not None:
                    await asyncio.gather(to_client, return_exceptions=True)

        await from_client()


def count_round_trips(
    label_servers: dict[str, tuple[Path | None, dict[str, str]]],
    cases: dict[str, Any],
    ok: dict[str, list[int]],
    kinds_of: dict[str, str],
    database_url: str,
    n: int,
    root: Path,
    processes: list[subprocess.Popen[bytes]],
) -> dict[str, float]:
    """Round trips per request of each case, per server label, through a `RoundTripProxy`."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    found: dict[str, float] = {}
    for label, (checkout, server_env) in label_servers.items():
        proxy = RoundTripProxy(url.host or "127.0.0.1", url.port or 5432)
        port = free_port()
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        env = {**server_env, "DATABASE_URL": proxied, "APP_BASE_URL": f"http://127.0.0.1:{port}"}
        log = root / f"auth-round-trips-{label.replace(' ', '-')}.log"
        if checkout is None:
            server = start_uvicorn("services.auth.main:app", port, env, log)
        else:
            server = start_checkout(checkout, port, env, log)
        processes.append(server)
        wait_for_port(port, timeout=120)
        with httpx.Client(timeout=60) as client:
            address = f"http://127.0.0.1:{port}/api/v1/auth/login"
            for case, bodies in cases.items():
                texts = [b.replace("{n}", f"rt{i}") for i, b in enumerate(bodies(kinds_of[label]))]
                for body in texts[:2]:  # warm-up: pooled connections, prepared statements
                    client.post(address, content=body, headers=JSON)
                start = proxy.count
                statuses = [
                    client.post(address, content=texts[i % len(texts)], headers=JSON).status_code
                    for i in range(n)
                ]
                found[f"{case} ({label})"] = (proxy.count - start) / n
                if unexpected := [s for s in statuses if s not in ok[case]]:
                    print(f"round trips, {case} ({label}): unexpected statuses {unexpected}", file=sys.stderr)
        server.terminate()
        server.wait(30)
    return found


def bare_verify(params: tuple[int, int, int], seconds: float) -> dict[str, Any]:
    """argon2-cffi `PasswordHasher.verify` in a loop, one thread per core, in this process."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(memory_cost=params[0], time_cost=params[1], parallelism=params[2])
    stored = hasher.hash(PASSWORD)
    counts: list[int] = []
    deadline = time.monotonic() + seconds

    def loop() -> None:
        done = 0
        while time.monotonic() < deadline:
            hasher.verify(stored, PASSWORD)
            done += 1
        counts.append(done)

    threads = [threading.Thread(target=loop) for _ in range(os.cpu_count() or 1)]
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    n = sum(counts)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "verifications": n,
        "per_s": n / wall,
        "per_cpu_s": n / (user + system),
        "cpu_ms": (user + system) * 1000 / n,
        "user_ms": user * 1000 / n,
        "sys_ms": system * 1000 / n,
        "minflt": (after.ru_minflt - before.ru_minflt) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", default="owasp,default", help="Argon2 settings to measure")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="py-spy the first server's logins (GIL only)")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per operation, interleaved")
    parser.add_argument("--round-trips", type=int, default=20, help="requests per case counted (0: none)")
    parser.add_argument(
        "--before", type=Path, default=None, help="also run auth from this checkout (e.g. the old main)"
    )
    args = parser.parse_args()
    kinds = [k for k in args.only.split(",") if k in PARAMS]
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "connections": args.connections,
        "rounds": args.rounds,
        "load_average_before": os.getloadavg(),
    }
    with bench_run() as run:
        prefix = f"lc{secrets.token_hex(3)}:"
        env = {
            "ENV": "development",
            "REDIS_URL": run.redis_url,
            "REDIS_KEY_PREFIX": prefix,
            "COOKIE_SECURE": "false",
            "OTEL_TRACES_EXPORTER": "none",
            "BLOCKBOT_ENV_FILE": "",
            "SERVICE_NAME": "auth",
            "DATABASE_URL": run.database.auth_url,
            "JWT_PRIVATE_KEYS": generate_seed(),
            "RATELIMIT_AUTH_IP_PER_MINUTE": HIGH,
            "RATELIMIT_AUTH_EMAIL_PER_HOUR": HIGH,
            "RATELIMIT_AUTH_MAILS_PER_ADDRESS_PER_HOUR": HIGH,
        }
        # Each server: (Argon2 setting, checkout it runs from: this one, or --before's).
        labels = {kind: (kind, None) for kind in kinds}
        if args.before:
            labels.update({f"{kind} before": (kind, args.before) for kind in kinds})
        ports = {label: free_port() for label in labels}
        servers = {}
        label_servers: dict[str, tuple[Path | None, dict[str, str]]] = {}
        for label, (kind, checkout) in labels.items():
            extra = OWASP if kind == "owasp" else {}
            server_env = {**env, **extra, "APP_BASE_URL": f"http://127.0.0.1:{ports[label]}"}
            label_servers[label] = (checkout, server_env)
            log = run.root / f"auth-{label.replace(' ', '-')}.log"
            if checkout is None:
                servers[label] = start_uvicorn("services.auth.main:app", ports[label], server_env, log)
            else:
                servers[label] = start_checkout(checkout, ports[label], server_env, log)
            run.processes.append(servers[label])
        for label in labels:
            wait_for_port(ports[label], timeout=120)
        roots = {f"auth ({label})": servers[label].pid for label in labels}
        postmaster = run.root / "pg" / "data" / "postmaster.pid"
        if postmaster.exists():
            roots["postgres"] = int(postmaster.read_text().split()[0])
        redis_port = int(run.redis_url.rsplit(":", 1)[1].split("/")[0])
        if (pid := redis_pid(redis_port)) is not None:
            roots["redis"] = pid
        report["counted_processes"] = sorted(roots)
        probe = asyncio.run(seed_probe(run.database.admin_url, secrets.token_urlsafe(32), args.connections))

        # Whether the stored hashes are at the parameters the service hashes with.
        for kind in kinds:
            memory, time_cost, parallelism = PARAMS[kind]
            settings = Settings(
                argon2_memory_kib=memory, argon2_time_cost=time_cost, argon2_parallelism=parallelism
            )
            from argon2 import PasswordHasher

            stored = PasswordHasher(memory_cost=memory, time_cost=time_cost, parallelism=parallelism).hash(
                PASSWORD
            )
            report.setdefault("stored_hash_needs_rehash", {})[kind] = Passwords(settings).needs_rehash(stored)

        cases = {
            "login": lambda kind: [
                json.dumps({"email": e, "password": PASSWORD}) for e in probe.login_emails[kind]
            ],
            "wrong password": lambda kind: [
                json.dumps({"email": e, "password": PASSWORD + "x"}) for e in probe.login_emails[kind]
            ],
            "unknown email": lambda kind: [
                json.dumps({"email": f"nobody{i}-{{n}}@probe.example", "password": PASSWORD})
                for i in range(args.connections)
            ],
        }
        ok = {"login": [200], "wrong password": [401], "unknown email": [401]}
        with httpx.Client(timeout=60) as client:
            for label, (kind, _) in labels.items():  # warm-up: connections, caches, the dummy hash
                for body in cases["login"](kind)[:4]:
                    client.post(
                        f"http://127.0.0.1:{ports[label]}/api/v1/auth/login", content=body, headers=JSON
                    )
        # Rounds, and within a round the servers one after the other for each case: before and
        # after see the same load of the machine, however it drifts. Totals over the rounds.
        bare: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        totals: dict[str, dict[str, Any]] = {}
        for _ in range(args.rounds):
            for kind in kinds:
                bare[kind].append(bare_verify(PARAMS[kind], args.seconds))
            for case, bodies in cases.items():
                for label, (kind, _) in labels.items():
                    spec = {
                        "host": "127.0.0.1",
                        "port": ports[label],
                        "method": "POST",
                        "path": "/api/v1/auth/login",
                        "mode": "closed",
                        "connections": args.connections,
                        "seconds": args.seconds,
                        "rate": 0,
                        "ok": ok[case],
                        "bodies": bodies(kind),
                    }
                    settle_roots(roots)
                    before = usage(roots)
                    sampler = None
                    if args.profile and case == "login" and label == kinds[0] and not report.get("profile"):
                        from bench import pyspy

                        sampler = pyspy.record(servers[label].pid, args.seconds, run.root / "profile.txt")
                    result = load(spec)
                    if sampler is not None:
                        sampler.wait()
                        report["profile"] = pyspy.summarize(run.root / "profile.txt", top=15)
                        if args.json:  # the raw samples beside the figures
                            shutil.copy(run.root / "profile.txt", args.json.with_suffix(".profile.txt"))
                    settle_roots(roots)
                    after = usage(roots)
                    total = totals.setdefault(
                        f"{case} ({label})",
                        {"requests": 0, "seconds": 0.0, "errors": {}, "usage": zero(roots)},
                    )
                    total["requests"] += result["requests"]
                    total["seconds"] += result["seconds"]
                    for status, count in result["errors"].items():
                        total["errors"][status] = total["errors"].get(status, 0) + count
                    for name in roots:
                        for key in USAGE_KEYS:
                            total["usage"][name][key] += after[name][key] - before[name][key]
        for kind in kinds:
            bare[kind].append(bare_verify(PARAMS[kind], args.seconds))
        report["operations"] = {
            name: {
                "requests": t["requests"],
                "rps": t["requests"] / t["seconds"],
                "errors": t["errors"],
                **per_request(zero(roots), t["usage"], max(1, t["requests"])),
            }
            for name, t in totals.items()
        }
        report["bare_verify_runs"] = bare
        report["bare_verify"] = {kind: combine(runs) for kind, runs in bare.items()}
        if args.round_trips > 0:
            kinds_of = {label: kind for label, (kind, _) in labels.items()}
            report["round_trips"] = count_round_trips(
                label_servers,
                cases,
                ok,
                kinds_of,
                run.database.auth_url,
                args.round_trips,
                run.root,
                run.processes,
            )
    report["load_average_after"] = os.getloadavg()
    print_table(report)
    if report.get("profile"):
        print("\n".join(report["profile"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def zero(roots: dict[str, int]) -> dict[str, dict[str, float]]:
    return {name: dict.fromkeys(USAGE_KEYS, 0.0) for name in roots}


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Bare verification figures over several runs (totals, not an average of ratios)."""
    n = sum(r["verifications"] for r in runs)
    cpu = sum(r["cpu_ms"] * r["verifications"] for r in runs) / 1000
    user = sum(r["user_ms"] * r["verifications"] for r in runs) / 1000
    wall = sum(r["verifications"] / r["per_s"] for r in runs)
    return {
        "verifications": n,
        "per_s": n / wall,
        "per_cpu_s": n / cpu,
        "cpu_ms": cpu * 1000 / n,
        "user_ms": user * 1000 / n,
        "sys_ms": (cpu - user) * 1000 / n,
        "minflt": sum(r["minflt"] * r["verifications"] for r in runs) / n,
    }


def start_checkout(checkout: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The auth service of another checkout (its own code first on the path), this interpreter."""
    command = [sys.executable, "-m", "uvicorn", "services.auth.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-server-header"]
    environment = {**os.environ, **env, "WEB_CONCURRENCY": "1", "PYTHONPATH": str(checkout)}
    with log.open("ab") as output:
        return subprocess.Popen(
            command, cwd=checkout, env=environment, stdout=output, stderr=subprocess.STDOUT
        )


def settle_roots(roots: dict[str, int]) -> None:
    from bench.capacity import StackProcesses

    settle(StackProcesses(roots), limit=30)


def print_table(report: dict[str, Any]) -> None:
    print(
        f"cpus={report['cpus']} connections={report['connections']} seconds={report['seconds']}"
        f" load average before {report['load_average_before'][0]:.1f}"
        f" after {report['load_average_after'][0]:.1f}"
    )
    print(f"stored hash needs a rehash at the service's parameters: {report['stored_hash_needs_rehash']}")
    header = (
        f"{'operation':28} {'req/s':>7} {'per vCPU-s':>10} {'cpu ms':>7} {'user':>6} {'sys':>6}"
        f" {'minflt':>7} {'loop ms':>7} {'errors':>8}  cpu ms by process (over 0.5)"
    )
    print(header)
    for name, r in report["operations"].items():
        by_process = r["cpu_ms_by_process"]
        by = ", ".join(f"{p} {ms:.1f}" for p, ms in by_process.items() if ms > 0.5)
        # The event loop (main thread) of the server this operation loaded: all but the hashing.
        loop = r["main_thread_ms_by_process"][max(by_process, key=by_process.get)]
        print(
            f"{name:28} {r['rps']:7.1f} {r['per_vcpu_s']:10.1f} {r['cpu_ms']:7.1f} {r['user_ms']:6.1f}"
            f" {r['sys_ms']:6.1f} {r['minflt']:7.0f} {loop:7.1f} {json.dumps(r['errors']):>8}  {by}"
        )
    if report.get("round_trips"):
        print("round trips to PostgreSQL per request:")
        for name, trips in report["round_trips"].items():
            print(f"  {name:28} {trips:5.1f}")
    for kind, b in report["bare_verify"].items():
        print(
            f"{'bare verify (' + kind + ')':28} {b['per_s']:7.1f} {b['per_cpu_s']:10.1f} {b['cpu_ms']:7.1f}"
            f" {b['user_ms']:6.1f} {b['sys_ms']:6.1f} {b['minflt']:7.0f}"
        )
        for label in (kind, f"{kind} before"):
            login = report["operations"].get(f"login ({label})")
            if login:
                ratio = login["per_vcpu_s"] / b["per_cpu_s"]
                print(f"  logins / bare verifications per CPU-s ({label}): {ratio:.2f}")


if __name__ == "__main__":
    main()
