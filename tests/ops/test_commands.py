"""Operator commands without the variables they do not use: readable refusals, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from redis import Redis

from devstack.databases import MigratedDatabase
from devstack.run import ROOT

# Real processes, each importing the services: seconds apiece.
pytestmark = pytest.mark.slow

# Nothing inherited: a variable the caller happens to have set must not make a test pass.
BARE = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env={**BARE, **env}, capture_output=True, text=True, timeout=180, check=False
    )


def _admin_env(database: MigratedDatabase) -> dict[str, str]:
    return {
        "ENV": "test",
        "DATABASE_URL": database.admin_url,
        "DB_ROLE_PREFIX": database.roles.owner.removesuffix("_owner"),
    }


def test_alembic_without_database_url_says_what_it_needs() -> None:
    result = _run([sys.executable, "-m", "alembic", "current"], {})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr and "services.migrate" in result.stderr
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr


def test_alembic_by_hand_uses_database_url(database: MigratedDatabase) -> None:
    result = _run([sys.executable, "-m", "alembic", "current"], _admin_env(database))
    assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout


def test_migrate_needs_no_redis_url(database: MigratedDatabase) -> None:
    # No role passwords: the roles exist and keep theirs; a second run changes nothing.
    result = _run([sys.executable, "-m", "services.migrate"], _admin_env(database))
    assert result.returncode == 0, result.stderr
    assert "REDIS_URL" not in result.stderr


# A production worker's environment without the sending key: reading dead letters does not send.
PRODUCTION = {
    "ENV": "production",
    "APP_BASE_URL": "https://app.blockbot.test",
    "EMAIL_FROM": "BlockBot <no-reply@blockbot.test>",
}


def test_dead_letter_needs_redis_url_only_and_says_empty(redis_url: str) -> None:
    refused = _run([sys.executable, "-m", "services.worker", "dead-letter"], PRODUCTION)
    assert refused.returncode == 2
    assert "REDIS_URL" in refused.stderr and "RESEND_API_KEY" not in refused.stderr
    assert "Traceback" not in refused.stderr

    prefix = f"bbt:deadletter:{os.getpid()}:"
    env = {**PRODUCTION, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}
    empty = _run([sys.executable, "-m", "services.worker", "dead-letter"], env)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == ""
    assert "is empty" in empty.stderr

    client = Redis.from_url(redis_url)
    key = f"{prefix}email:dead-letter"
    try:
        client.lpush(key, '{"reason": "invalid"}')
        listed = _run([sys.executable, "-m", "services.worker", "dead-letter"], env)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout == '{"reason": "invalid"}\n'
        assert "empty" not in listed.stderr
    finally:
        client.delete(key)
        client.close()


@pytest.mark.parametrize("module", ["services.api.main", "services.auth.main"])
def test_http_services_still_refuse_to_start_without_redis(module: str) -> None:
    code = f"import runpy; runpy.run_module('{module}', run_name='__main__')"
    env = {"DATABASE_URL": "postgresql://u@127.0.0.1:1/db", "JWKS_URL": "http://127.0.0.1:1/jwks.json"}
    result = _run([sys.executable, "-c", code], env)
    assert result.returncode == 2, result.stderr
    assert "REDIS_URL" in result.stderr and "Traceback" not in result.stderr
