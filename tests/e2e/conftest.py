"""The local stack (`python -m devstack.run`) as separate processes behind the real Traefik.

One stack per test session, on free ports in a temporary directory, started exactly as
`make run` starts it; the tests talk to it through Traefik's URL only (plus each service's own
port where the contract says so: /metrics). Stopping it with SIGTERM must leave no process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from devstack.run import LocalStack, Ports, port_in_use

# Fast password hashing and a one-second refresh grace (so reuse is observable quickly);
# the per-IP auth limit is raised because every request of the suite comes from 127.0.0.1.
STACK_ENV = {
    "ARGON2_MEMORY_KIB": "8192",
    "ARGON2_TIME_COST": "1",
    "ARGON2_PARALLELISM": "1",
    "REFRESH_REUSE_GRACE_SECONDS": "1",
    "RATELIMIT_AUTH_IP_PER_MINUTE": "1000",
    "LOG_LEVEL": "WARNING",
    # Outage bounds sized for a loaded test machine, not production (the outage tests in
    # tests/api set the production ones): a slow connect here is load, not an outage.
    "DATABASE_POOL_TIMEOUT_SECONDS": "60",
    "DATABASE_CONNECT_TIMEOUT_SECONDS": "60",
    "DATABASE_COMMAND_TIMEOUT_SECONDS": "60",
    "REDIS_CALL_TIMEOUT_MS": "2000",
    "REDIS_QUEUE_TIMEOUT_MS": "60000",
}


def _pids_using(root: Path) -> list[int]:
    """Processes whose command line mentions the stack directory (postgres, redis, ...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with tempfile.TemporaryDirectory(prefix="bbe2e-") as directory:
        root = Path(directory)
        env = {key: value for key, value in STACK_ENV.items()}
        # A stack of our own: never a server the caller's environment points at.
        env.update({"DATABASE_URL": "", "REDIS_URL": ""})
        local = LocalStack(root / "stack", ports=Ports.free(), env=env)
        local.start()
        try:
            local.wait_ready(timeout=180)
            yield local
        finally:
            returncode = local.stop()
            leftovers = _pids_using(root)
            listening = [port for port in asdict(local.ports).values() if port_in_use(port)]
            # SIGTERM is a clean stop: every process stopped, exit status 0.
            assert returncode == 0, local.log_tail()
            assert not leftovers, f"processes left running: {leftovers}\n{local.log_tail()}"
            assert not listening, f"ports still in use after stop: {listening}"
