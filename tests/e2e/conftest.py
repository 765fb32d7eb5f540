"""The local stack (`python -m devstack.run`) as separate processes behind the real Traefik.

One stack per test session, on free ports in a temporary directory, started exactly as
`make run` starts it; the tests talk to it through Traefik's URL only (plus each service's own
port where the contract says so: /metrics). Stopping it with SIGTERM must leave no process.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pytest

from devstack.run import LocalStack, Ports, port_in_use
from tests.e2e.processes import STACK_ENV, pids_using


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


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with running_stack() as local:
        yield local
