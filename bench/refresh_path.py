"""CPU per request of `POST /auth/refresh` and `GET /me` (token, API key), every process counted.

    .venv/bin/python bench/refresh_path.py [--seconds 8] [--rounds 3] [--connections 32]
                                          [--baseline REF] [--profile refresh|me] [--only NAME]

A focused cut of bench/capacity.py (same load generator, same /proc accounting, same stack as
`make run`: PostgreSQL, Redis, auth and api under uvicorn with the settings' defaults, rate
limits raised out of the way) for the three operations on an empty database, plus a FastAPI
hello as this machine's reference, measured in the same run.

With `--baseline REF` (a git revision) a second auth and api run the code of REF, extracted
with `git archive` to a temporary directory, against the same PostgreSQL and Redis: each round
measures the baseline and the working tree one after the other, so before and after share the
machine's load. CPU per request is the service's process plus every PostgreSQL backend and
Redis, over the saturation run (the other, idle services are not counted).

`--profile refresh` (or `me token`, `me API key`) samples the working tree's server (or the
baseline's: `--profile-code base`) with py-spy during one extra run of that operation and
prints the summary (bench/pyspy.py; `pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.capacity import (  # noqa: E402
    HIGH,
    PASSWORD,
    Operation,
    StackProcesses,
    add_sessions,
    load,
    measure,
    redis_pid,
    seed_probe,
)
from bench.servers import bench_run, start_uvicorn  # noqa: E402
from devstack.ports import free_port, wait_for_port  # noqa: E402
from services.auth.keys import generate_seed  # noqa: E402


def extract(revision: str, into: Path) -> Path:
    """The files of `revision` (git archive) under `into`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    with tempfile.TemporaryFile() as tar_file:
        tar_file.write(archive)
        tar_file.seek(0)
        with tarfile.open(fileobj=tar_file) as tar:
            tar.extractall(into, filter="data")
    return into


def start_from(tree: Path, app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """uvicorn `app` importing the packages of `tree` (its directory first on sys.path)."""
    environment = {**os.environ, **env, "WEB_CONCURRENCY": "1", "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as output:
        return subprocess.Popen(
            [*command, "--no-server-header"],
            cwd=tree,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per operation (median kept)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--baseline", default="", help="a git revision measured beside the working tree")
    parser.add_argument("--profile", default="", help="py-spy the working tree's server: refresh or me")
    parser.add_argument("--top", type=int, default=12, help="lines of the profile's summary")
    parser.add_argument("--profile-code", default="new", help="whose server --profile samples: new or base")
    parser.add_argument("--only", default="", help="measure only the operations whose name contains this")
    args = parser.parse_args()

    with bench_run() as run:
        root, database, redis_url = run.root, run.database, run.redis_url
        hash_secret = secrets.token_urlsafe(32)
        seed = generate_seed()
        trees = {"new": ROOT}
        if args.baseline:
            trees["base"] = extract(args.baseline, root / "baseline")
        servers: dict[str, subprocess.Popen[bytes]] = {}
        ports: dict[str, int] = {}
        for label, tree in trees.items():
            auth_port, api_port = free_port(), free_port()
            origin = f"http://127.0.0.1:{auth_port}"
            common = {
                "ENV": "development",
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": f"rp{label}{secrets.token_hex(2)}:",
                "COOKIE_SECURE": "false",
                "APP_BASE_URL": origin,
                "OTEL_TRACES_EXPORTER": "none",
                "BLOCKBOT_ENV_FILE": "",
                "RATELIMIT_AUTH_IP_PER_MINUTE": HIGH,
                "RATELIMIT_AUTH_REFRESH_IP_PER_MINUTE": HIGH,
                "RATELIMIT_ORG_PER_HOUR": HIGH,
                "RATELIMIT_USER_PER_HOUR": HIGH,
                "RATELIMIT_USER_ENDPOINT_PER_MINUTE": HIGH,
            }
            auth_env = {
                **common,
                "SERVICE_NAME": "auth",
                "DATABASE_URL": database.auth_url,
                "JWT_PRIVATE_KEYS": seed,
            }
            api_env = {
                **common,
                "SERVICE_NAME": "api",
                "DATABASE_URL": database.api_url,
                "JWKS_URL": f"{origin}/api/v1/auth/.well-known/jwks.json",
                "API_KEY_HASH_SECRET": hash_secret,
            }
            for service, app, port, env in (
                ("auth", "services.auth.main:app", auth_port, auth_env),
                ("api", "services.api.main:app", api_port, api_env),
            ):
                name = f"{service}_{label}"
                servers[name] = start_from(tree, app, port, env, root / f"{name}.log")
                ports[name] = port
        ports["hello"] = free_port()
        servers["hello"] = start_uvicorn("bench.hello_apps:fastapi", ports["hello"], {}, root / "hello.log")
        run.processes.extend(servers.values())
        for name in servers:
            wait_for_port(ports[name], timeout=120)

        shared_roots: dict[str, int] = {}
        postmaster = root / "pg" / "data" / "postmaster.pid"
        if postmaster.exists():
            shared_roots["postgres"] = int(postmaster.read_text().split()[0])
        if (pid := redis_pid(int(redis_url.rsplit(":", 1)[1].split("/")[0]))) is not None:
            shared_roots["redis"] = pid
        if len(shared_roots) < 2:
            print("WARNING: PostgreSQL or Redis is not ours (BENCH_*_URL): their CPU is not counted")

        probe = asyncio.run(seed_probe(database.admin_url, hash_secret, args.connections))
        token = _access_token(ports["auth_new"], probe.owner_email)

        def refresh_spec(_budget: int) -> dict[str, Any]:
            cookies = asyncio.run(add_sessions(database.admin_url, probe, args.connections))
            return {"cookie_mode": "chain", "cookies": cookies}

        def bearer(value: str) -> Any:
            return lambda _budget: {"headers": {"Authorization": f"Bearer {value}"}}

        def operations(label: str) -> list[Operation]:
            return [op for op in all_operations(label) if args.only in op.name]

        def all_operations(label: str) -> list[Operation]:
            return [
                Operation("refresh", f"auth_{label}", "POST", lambda: "/api/v1/auth/refresh", refresh_spec),
                Operation("GET /me token", f"api_{label}", "GET", lambda: "/api/v1/me", bearer(token)),
                Operation(
                    "GET /me API key", f"api_{label}", "GET", lambda: "/api/v1/me", bearer(probe.api_key)
                ),
            ]

        hello_stack = StackProcesses({"hello": servers["hello"].pid})
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        hello: list[float] = []
        for round_ in range(args.rounds):
            hello.append(_hello(hello_stack, ports["hello"], args))
            for label in trees:
                for op in operations(label):
                    stack = StackProcesses({"service": servers[op.port].pid, **shared_roots})
                    _warm(ports, op)
                    result = measure(stack, ports, op, "closed", args.seconds, args.connections, 0, {})
                    results.setdefault((op.name, label), []).append(result)
                    print(
                        f"  round {round_ + 1} {label:4s} {op.name:16s} {result['rps']:7.1f}/s"
                        f" cpu {result['cpu_ms_per_request']:.3f} ms"
                        f" ({_by(result['cpu_ms_by_process'])}) errors {result['errors'] or '-'}",
                        flush=True,
                    )
        reference = statistics.median(hello)
        print(f"\nFastAPI hello reference: {reference:.3f} ms CPU/request (median of {len(hello)})")
        print(
            f"{'operation':16s} {'code':4s} {'cpu ms/req':>10s} {'per vCPU-s':>10s}"
            f" {'x hello':>8s}  by process"
        )
        for (name, label), found in results.items():
            cpu = statistics.median(r["cpu_ms_per_request"] for r in found)
            by = {
                group: statistics.median(r["cpu_ms_by_process"][group] for r in found)
                for group in found[0]["cpu_ms_by_process"]
            }
            print(f"{name:16s} {label:4s} {cpu:10.3f} {1000 / cpu:10.0f} {cpu / reference:8.1f}  {_by(by)}")

        if args.profile:
            from bench import pyspy

            wanted = next(op for op in operations(args.profile_code) if args.profile in op.name)
            sampler = pyspy.record(servers[wanted.port].pid, args.seconds, root / "profile.txt")
            stack = StackProcesses({"service": servers[wanted.port].pid, **shared_roots})
            measure(stack, ports, wanted, "closed", args.seconds, args.connections, 0, {})
            sampler.wait()
            kept = ROOT / ".dev" / f"refresh-path-profile-{args.profile}-{args.profile_code}.txt"
            kept.parent.mkdir(exist_ok=True)
            kept.write_bytes((root / "profile.txt").read_bytes())
            print("\n".join(pyspy.summarize(kept, top=args.top)))
            print(f"raw samples: {kept}")


def _by(by: dict[str, float]) -> str:
    return " ".join(f"{name} {ms:.3f}" for name, ms in by.items())


def _access_token(port: int, email: str) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=120
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _warm(ports: dict[str, int], op: Operation) -> None:
    spec = {"host": "127.0.0.1", "port": ports[op.port], "method": op.method, "path": op.path()}
    load({**spec, "mode": "closed", "connections": 4, "seconds": 1, "ok": list(op.ok), **op.spec(400)})


def _hello(stack: StackProcesses, port: int, args: argparse.Namespace) -> float:
    spec = {"host": "127.0.0.1", "port": port, "method": "GET", "path": "/", "mode": "closed"}
    load({**spec, "connections": 4, "seconds": 1})
    before = stack.cpu()
    result = load({**spec, "connections": args.connections, "seconds": args.seconds})
    served = max(1, int(result["requests"]))
    return (stack.cpu() - before) * 1000 / served


if __name__ == "__main__":
    main()
