"""The real auth service under uvicorn, one process, for the benchmarks."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.databases import MigratedDatabase
from devstack.ports import free_port, wait_for_port
from devstack.processes import start_uvicorn, stop_process
from services.auth.keys import generate_seed


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
    server = start_uvicorn("services.auth.main:app", port, env, tmp / "auth.log", "--no-access-log")
    try:
        wait_for_port(port, timeout=60)
        yield AuthServer(f"http://127.0.0.1:{port}", redis_url, prefix)
    finally:
        stop_process(server)
