"""The real auth service under uvicorn, one process, for the benchmarks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.databases import MigratedDatabase
from devstack.ports import free_port, wait_for_port
from devstack.processes import stop_process
from services.auth.keys import generate_seed

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class AuthServer:
    base_url: str
    redis_url: str
    key_prefix: str


@contextmanager
def auth_server(
    tmp: Path, database: MigratedDatabase, redis_url: str, **env_overrides: str
) -> Iterator[AuthServer]:
    """Start auth (development settings, limits out of the way unless overridden); stop it after."""
    port = free_port()
    prefix = f"bbbench:{secrets.token_hex(4)}:"
    env = {
        **os.environ,
        "ENV": "development",
        "SERVICE_NAME": "auth",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database.auth_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "JWT_PRIVATE_KEYS": generate_seed(),
        "COOKIE_SECURE": "false",
        "RATELIMIT_AUTH_IP_PER_MINUTE": "1000000",
        "RATELIMIT_AUTH_EMAIL_PER_HOUR": "1000000",
        "RATELIMIT_AUTH_MAILS_PER_ADDRESS_PER_HOUR": "1000000",
        **env_overrides,
    }
    command = [sys.executable, "-m", "uvicorn", "services.auth.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log"]
    with open(tmp / "auth.log", "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for_port(port, timeout=60)
            yield AuthServer(f"http://127.0.0.1:{port}", redis_url, prefix)
        finally:
            stop_process(server)
