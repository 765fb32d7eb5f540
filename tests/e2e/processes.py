"""The local stack's processes: the environment the tests start a stack with (STACK_ENV), and which
processes still belong to a stack (its directory in their command line or environment)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

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
}


def pids_using(root: Path) -> list[int]:
    """Processes (other than this one) whose command line names `root` (PostgreSQL, Redis, ...);
    `pids_mentioning` also reads their environment."""
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


def pids_mentioning(root: Path) -> list[int]:
    """Processes (other than this one) whose command line or environment names `root`.

    The environment catches what `make run` started (every child inherits DEVSTACK_ROOT); the
    command line catches PostgreSQL and Redis, which are given their data directory."""
    needle = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                if needle in (entry / name).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


def command_line(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return "(gone)"


@contextmanager
def running_stack(env: Mapping[str, str] = {}, ports: Ports | None = None) -> Iterator[LocalStack]:
    """A stack of its own in a temporary directory (STACK_ENV plus `env`), stopped cleanly at the
    end: exit status 0, no process left, every port free."""
    with tempfile.TemporaryDirectory(prefix="bbe2e-") as directory:
        root = Path(directory)
        # A stack of our own: never a server the caller's environment points at.
        stack_env = {**STACK_ENV, "DATABASE_URL": "", "REDIS_URL": "", **env}
        local = LocalStack(root / "stack", ports=ports or Ports.free(), env=stack_env)
        local.start()
        try:
            local.wait_ready(timeout=180)
            yield local
        finally:
            returncode = local.stop()
            leftovers = pids_using(root)
            listening = [port for port in asdict(local.ports).values() if port_in_use(port)]
            # SIGTERM is a clean stop: every process stopped, exit status 0.
            assert returncode == 0, local.log_tail()
            assert not leftovers, f"processes left running: {leftovers}\n{local.log_tail()}"
            assert not listening, f"ports still in use after stop: {listening}"
