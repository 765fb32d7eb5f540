"""Backup and restore end to end on `make run`'s servers (what `make backup` / `make restore`
run): sign-ups and sessions exist -> backup -> the PostgreSQL data directory is destroyed ->
restore -> the same users log in, refresh cookies issued before the backup still rotate, the
audit log is intact and append-only, RLS is still forced, and Redis agrees with the restored
database (the per-item choices are in services/admin/backup.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devstack.run import Ports, StackRunner
from services.auth.app import create_auth_app
from shared.access_tokens import revoked_sid_key
from shared.redis import create_redis, email_queue_name
from shared.settings import Settings, load_settings
from tests.api.helpers import running
from tests.auth.helpers import (
    GENEROUS,
    KEYRING,
    PREFIX,
    AuthApp,
    bearer,
    do_refresh,
    login,
    refresh_cookie,
    signup,
)
from tests.ops.helpers import FAST_HASHING, ROOT, public_keys_of

pytestmark = pytest.mark.slow

TENANT_TABLES = (
    "organizations",
    "users",
    "sessions",
    "one_time_tokens",
    "invitations",
    "audit_log",
    "session_retired_tokens",
    "api_keys",
)


def backup_cli(step: str, file: Path, root: Path, ports: Ports) -> subprocess.CompletedProcess[str]:
    """`make backup` / `make restore` run exactly this."""
    return subprocess.run(
        [sys.executable, "-m", "services.admin.backup", step, str(file), "--local", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            **FAST_HASHING,
            "DEVSTACK_POSTGRES_PORT": str(ports.postgres),
            "DEVSTACK_REDIS_PORT": str(ports.redis),
            "DATABASE_URL": "",
            "REDIS_URL": "",
        },
    )


def service_settings(runner: StackRunner, role: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "service_name": role,
        "database_url": runner.role_url(role),
        "redis_url": runner.redis_service_url,
        "cookie_secure": False,
        "argon2_memory_kib": 8_192,
        "argon2_time_cost": 1,
        "argon2_parallelism": 1,
    }
    values.update(overrides)
    return load_settings(**values)


@asynccontextmanager
async def apps(runner: StackRunner) -> AsyncIterator[tuple[AuthApp, Any]]:
    auth_settings = service_settings(runner, "auth", **GENEROUS)
    auth_app = create_auth_app(auth_settings, keyring=KEYRING)
    api_settings = service_settings(
        runner,
        "api",
        jwt_public_keys=public_keys_of(KEYRING),
        ratelimit_org_per_hour=10**6,
        ratelimit_user_per_hour=10**6,
        ratelimit_user_endpoint_per_minute=10**6,
    )
    async with auth_app.router.lifespan_context(auth_app), running(api_settings) as api:
        yield AuthApp(auth_app, auth_settings), api


@pytest.fixture
def stack() -> Any:
    # Not pytest's tmp_path: other runs reset /tmp/pytest-of-<user> to 0700, which locks out
    # the embedded PostgreSQL's system user.
    with tempfile.TemporaryDirectory(prefix="bbops-") as directory:
        ports = Ports(postgres=Ports.free().postgres, redis=Ports.free().redis)
        with open(os.devnull, "w") as quiet:
            runner = StackRunner(root=Path(directory) / "dev", ports=ports, out=quiet)
            runner.prepare()  # PostgreSQL, Redis, schema, secrets: what `make run` does first
            try:
                yield runner
            finally:
                runner.stop_infrastructure()


async def test_backup_destroy_restore(stack: StackRunner):
    runner = stack
    backup = runner.root.parent / "backups" / "blockbot.dump"
    async with apps(runner) as (auth, api), auth.client() as client:
        email, first = await signup(client, auth.settings)
        kept_cookie = refresh_cookie(first)
        second = await login(client, email)
        revoked_later = await login(client, email)
        revoked_before = await login(client, email)
        assert (
            await client.post(
                f"{PREFIX}/logout", headers={"Cookie": f"bb_refresh={refresh_cookie(revoked_before)}"}
            )
        ).status_code == 204
        admin = await asyncpg.connect(runner.admin_url)
        try:
            org_id = await admin.fetchval("SELECT org_id FROM users WHERE email = $1", email)
            audit_before = await admin.fetch(
                "SELECT id, action, created_at FROM audit_log WHERE org_id = $1 ORDER BY id", org_id
            )
        finally:
            await admin.close()

        result = await asyncio.to_thread(backup_cli, "dump", backup, runner.root, runner.ports)
        assert result.returncode == 0, result.stderr
        assert backup.stat().st_size > 0 and (backup.stat().st_mode & 0o077) == 0
        secrets_file = runner.secrets_file.read_text()
        for line in secrets_file.splitlines():
            if "PASSWORD" in line:
                password = line.partition("=")[2].strip('"')
                assert password.encode() not in backup.read_bytes()

        # After the backup: a session revoked, a new account.
        assert (
            await client.post(
                f"{PREFIX}/logout", headers={"Cookie": f"bb_refresh={refresh_cookie(revoked_later)}"}
            )
        ).status_code == 204
        late_email, _ = await signup(client, auth.settings)

    redis = create_redis(auth.settings)
    try:
        queue = email_queue_name(auth.settings)
        queued_before = await redis.zcard(queue)
        # A lost marker (say Redis was rebuilt) for the session revoked before the backup.
        assert await redis.delete(revoked_sid_key(auth.settings, _sid(revoked_before))) == 1
    finally:
        await redis.aclose()

    # Destroy PostgreSQL's data directory, as after losing the volume.
    assert runner._postgres is not None
    runner._postgres.stop()
    runner._postgres = None
    shutil.rmtree(runner.root / "postgres")
    result = await asyncio.to_thread(backup_cli, "restore", backup, runner.root, runner.ports)
    assert result.returncode == 0, result.stderr + result.stdout
    again = backup_cli("restore", backup, runner.root, runner.ports)
    assert again.returncode == 1 and "not empty" in again.stderr
    await asyncio.to_thread(runner.start_postgres)

    async with apps(runner) as (auth, api), auth.client() as client:
        assert (await login(client, email)).status_code == 200
        assert (await login(client, late_email)).status_code == 401  # after the backup: gone
        rotated = await do_refresh(client, kept_cookie)
        assert rotated.status_code == 200, rotated.text
        assert (await api.client.get("/api/v1/me", headers=bearer(rotated))).status_code == 200
        assert (await api.client.get("/api/v1/me", headers=bearer(second))).status_code == 200
        # Revoked before the backup: revoked in the restored database; the marker written by
        # the restore refuses its access token although the original marker was lost.
        assert (await api.client.get("/api/v1/me", headers=bearer(revoked_before))).status_code == 401
        assert (await do_refresh(client, refresh_cookie(revoked_before))).status_code == 401
        # Revoked after the backup: the restored database has it alive again (returned to the
        # moment of the backup), but the kept marker still refuses the access token issued
        # before the revocation.
        assert (await api.client.get("/api/v1/me", headers=bearer(revoked_later))).status_code == 401

    redis = create_redis(auth.settings)
    try:
        assert await redis.zcard(queue) == queued_before
    finally:
        await redis.aclose()

    admin = await asyncpg.connect(runner.admin_url)
    try:
        audit_after = await admin.fetch(
            "SELECT id, action, created_at FROM audit_log WHERE org_id = $1 AND id <= $2 ORDER BY id",
            org_id,
            audit_before[-1]["id"],
        )
        assert audit_after == audit_before
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await admin.execute("UPDATE audit_log SET action = 'x' WHERE org_id = $1", org_id)
        forced = await admin.fetch(
            "SELECT relname, relrowsecurity AND relforcerowsecurity AS forced FROM pg_class"
            " WHERE relname = ANY($1::text[]) AND relkind = 'r'",
            list(TENANT_TABLES),
        )
        assert {r["relname"] for r in forced} == set(TENANT_TABLES)
        assert all(r["forced"] for r in forced)
        head = await admin.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await admin.close()
    api_conn = await asyncpg.connect(runner.role_url("api"))
    try:
        assert await api_conn.fetchval("SELECT count(*) FROM users") == 0  # no tenant: no rows
    finally:
        await api_conn.close()
    assert head == sorted(p.name.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("0*.py"))[-1]


async def test_restore_refuses_a_tampered_dump(stack: StackRunner):
    """Tried as an attacker would: pg_restore runs as the administrator and trusted the dump, so
    a backup edited to stop forcing RLS (and to give the api role more rights) came back so."""
    runner = stack
    backup = runner.root.parent / "backups" / "tampered.dump"
    api_role = f"{runner.role_prefix}_api"
    admin = await asyncpg.connect(runner.admin_url)
    try:
        # The attacker's edits, made to the database before dumping it (as editing the file would).
        await admin.execute("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
        await admin.execute(f'GRANT DELETE ON sessions TO "{api_role}"')
    finally:
        await admin.close()
    result = await asyncio.to_thread(backup_cli, "dump", backup, runner.root, runner.ports)
    assert result.returncode == 0, result.stderr
    assert runner._postgres is not None
    runner._postgres.stop()
    runner._postgres = None
    shutil.rmtree(runner.root / "postgres")
    refused = await asyncio.to_thread(backup_cli, "restore", backup, runner.root, runner.ports)
    assert refused.returncode == 1
    assert "tampered" in refused.stderr
    assert "relation public.users differs" in refused.stderr  # forced RLS
    assert "relation public.sessions differs" in refused.stderr  # the extra grant
    assert "restore a backup you trust" in refused.stderr
    # The scratch database the check builds is gone.
    await asyncio.to_thread(runner.start_postgres)
    admin = await asyncpg.connect(runner.admin_url)
    try:
        names = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE '%schema_check%'")
        assert names == []
    finally:
        await admin.close()


def _sid(response: Any) -> str:
    import jwt

    return str(jwt.decode(response.json()["access_token"], options={"verify_signature": False})["sid"])


# --- the backup file's mode (second security review, finding 4) --------------------------------

# A stand-in for pg_dump: it records the mode of the file it writes to (its --file, or its
# standard output) before the first byte, writes part of a dump, then succeeds or fails.
FAKE_PG_DUMP = """#!{python}
import os, sys
target = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--file=")]
out = open(target[0], "wb") if target else sys.stdout.buffer
with open({seen!r}, "w") as seen:
    seen.write(oct(os.fstat(out.fileno()).st_mode & 0o777))
out.write(b"PGDMP password hashes and key HMACs")
out.flush()
sys.exit(int(os.environ.get("FAKE_PG_DUMP_EXIT", "0")))
"""


def _fake_pg_dump(directory: Path) -> Path:
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "pg_dump"
    tool.write_text(FAKE_PG_DUMP.format(python=sys.executable, seen=str(directory / "seen")))
    tool.chmod(0o755)
    return bin_dir


def test_the_dump_is_owner_only_before_its_first_byte_and_removed_on_failure(
    tmp_path: Path, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried as an attacker would: another local user read the file while pg_dump wrote it
    (created under umask 022, chmod 600 only after success) and a failed dump stayed readable."""
    from services.admin.backup import BackupError, dump

    monkeypatch.setenv("PG_BIN_DIR", str(_fake_pg_dump(tmp_path)))
    old_umask = os.umask(0o022)
    try:
        file = tmp_path / "backups" / "blockbot.dump"
        dump(make_settings("admin"), file)
        assert (tmp_path / "seen").read_text() == "0o600"
        assert (file.stat().st_mode & 0o777) == 0o600
        assert file.read_bytes().startswith(b"PGDMP")

        monkeypatch.setenv("FAKE_PG_DUMP_EXIT", "1")
        failed = tmp_path / "backups" / "failed.dump"
        with pytest.raises(BackupError, match="pg_dump failed"):
            dump(make_settings("admin"), failed)
        assert (tmp_path / "seen").read_text() == "0o600"
        assert sorted(p.name for p in failed.parent.iterdir()) == ["blockbot.dump"]  # no .partial left
    finally:
        os.umask(old_umask)


FAKE_COMPOSE = """#!/bin/sh
# `docker compose ... exec -T postgres sh -c 'pg_dump ...'`: part of a dump, then the exit status.
stat -L -c %a /proc/self/fd/1 > {seen}
printf 'PGDMP password hashes'
exit ${{FAKE_COMPOSE_EXIT:-0}}
"""


@pytest.mark.parametrize("exit_status", [0, 1])
def test_backup_compose_writes_owner_only_and_removes_a_failed_dump(tmp_path: Path, exit_status: int) -> None:
    compose = tmp_path / "compose"
    seen = tmp_path / "seen"
    compose.write_text(FAKE_COMPOSE.format(seen=seen))
    compose.chmod(0o755)
    file = tmp_path / "backups" / "blockbot.dump"
    make = ["make", "--no-print-directory", "-C", str(ROOT)]
    result = subprocess.run(
        [*make, "backup-compose", f"FILE={file}", f"DOCKER_COMPOSE={compose}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "FAKE_COMPOSE_EXIT": str(exit_status)},
        preexec_fn=lambda: os.umask(0o022),  # the operator's usual umask
    )
    assert seen.read_text().strip() == "600"
    if exit_status == 0:
        assert result.returncode == 0, result.stderr
        assert (file.stat().st_mode & 0o777) == 0o600
    else:
        assert result.returncode != 0
        assert not file.exists()
        assert list(file.parent.iterdir()) == []
