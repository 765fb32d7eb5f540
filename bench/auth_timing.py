"""Timing of the auth endpoints that must not tell known addresses from unknown ones.

Starts the real auth service (uvicorn, one process) against a fresh migrated database, makes a
verified account and a pending sign-up, then sends, per endpoint, N requests for the known
address and N for fresh unknown ones (interleaved, sequential, a short gap so that one request's
after-response work does not land in the next one's time; random order) and prints the medians and their
difference (security review finding 3; target: < 1 ms or < 5% of the median).

    .venv/bin/python bench/auth_timing.py [--requests 100] [--gap 0.03]

Uses BENCH_DATABASE_URL / BENCH_REDIS_URL if given, else its own PostgreSQL and redis-server.
ARGON2_* from the environment are passed through (production parameters by default).
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accounts import create_verified_account  # noqa: E402
from bench.auth_server import auth_server  # noqa: E402
from bench.servers import bench_servers  # noqa: E402

PASSWORD = "bench timing password 1"
WRONG = "not the password at all"


def fresh() -> str:
    return f"unknown-{secrets.token_hex(6)}@example.com"


def endpoints(known: str, pending: str) -> list[tuple[str, str, Callable[[str], dict[str, Any]], str]]:
    """(label, path, body for an address, the known address to use)."""
    return [
        ("login (wrong password)", "/login", lambda a: {"email": a, "password": WRONG}, known),
        ("magic-link", "/magic-link", lambda a: {"email": a}, known),
        ("password/forgot", "/password/forgot", lambda a: {"email": a}, known),
        ("verify-request", "/email/verify-request", lambda a: {"email": a}, pending),
        (
            "register",
            "/register",
            lambda a: {"email": a, "password": PASSWORD, "name": "Bench", "org_name": "Bench"},
            known,
        ),
    ]


def timed(client: httpx.Client, path: str, body: dict[str, Any]) -> float | None:
    """Milliseconds for one request; None when the service shed it (503 on a loaded machine)."""
    start = time.perf_counter()
    response = client.post(f"/api/v1/auth{path}", json=body)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code == 503:
        return None
    assert response.status_code in (202, 401), (path, response.status_code, response.text)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between requests")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bb-bench-") as tmp_dir,
        bench_servers(Path(tmp_dir)) as (database, redis_url),
        auth_server(Path(tmp_dir), database, redis_url) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as client,
    ):
        known = f"known-{secrets.token_hex(6)}@example.com"
        create_verified_account(client, server.redis_url, server.key_prefix, known, PASSWORD)
        pending = f"pending-{secrets.token_hex(6)}@example.com"
        registered = client.post(
            "/api/v1/auth/register",
            json={"email": pending, "password": PASSWORD, "name": "Bench", "org_name": "Bench"},
        )
        assert registered.status_code == 202
        print(f"{args.requests} requests each, known vs unknown, gap {args.gap * 1000:.0f} ms\n")
        print(f"{'endpoint':24} {'known ms':>9} {'unknown ms':>11} {'diff ms':>8} {'diff %':>7}")
        for label, path, body, address in endpoints(known, pending):
            for _ in range(5):  # warm-up
                timed(client, path, body(fresh()))
                time.sleep(args.gap)
            samples: dict[bool, list[float]] = {True: [], False: []}
            # Random order: a request never sits systematically behind the other kind's
            # after-response work on the kept-alive connection.
            order = [True] * args.requests + [False] * args.requests
            random.shuffle(order)
            shed = 0
            for is_known in order:
                elapsed = timed(client, path, body(address if is_known else fresh()))
                if elapsed is None:
                    shed += 1
                else:
                    samples[is_known].append(elapsed)
                time.sleep(args.gap)
            k, u = statistics.median(samples[True]), statistics.median(samples[False])
            note = f"  ({shed} shed with 503)" if shed else ""
            print(f"{label:24} {k:9.2f} {u:11.2f} {k - u:8.2f} {100 * (k - u) / u:6.1f}%{note}")


if __name__ == "__main__":
    main()
