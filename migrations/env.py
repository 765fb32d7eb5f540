"""Alembic environment: async engine, run as the schema owner role."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from migrations.roles import Roles

config = context.config


def _run(connection: Connection) -> None:
    roles: Roles = config.attributes["roles"]
    # Objects created from here on belong to the owner role, not to the administrator.
    connection.execute(text(f'SET ROLE "{roles.owner}"'))
    # One migrate job at a time (a session lock: it spans the per-migration transactions).
    connection.execute(text("SELECT pg_advisory_lock(hashtext('blockbot-migrate-schema'))"))
    # End the implicit transaction those statements opened (both settings are per session):
    # otherwise Alembic nests every migration in it and the whole upgrade is one transaction.
    # Each migration commits on its own, so a failure leaves the last good revision in place.
    connection.commit()
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def _configure_from_environment() -> None:
    """`alembic ...` run by hand: the administrator URL and role prefix from the environment.

    `python -m services.migrate` passes both itself (after creating the roles)."""
    from shared.db import database_url
    from shared.settings import SettingsError, load_settings

    try:
        settings = load_settings(service_name="alembic")
        config.attributes["database_url"] = database_url(settings)
    except SettingsError as error:
        raise SystemExit(
            f"{error}\nalembic needs DATABASE_URL (an administrator URL, e.g. "
            "postgresql://postgres@127.0.0.1:55432/blockbot for `make run`); to create the roles "
            "and upgrade, run `python -m services.migrate` (make migrate-local)"
        ) from None
    config.attributes["roles"] = Roles.for_prefix(settings.db_role_prefix)


async def _main() -> None:
    engine = create_async_engine(config.attributes["database_url"])
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline mode is not supported; run `python -m services.migrate`")
if "database_url" not in config.attributes:
    _configure_from_environment()
asyncio.run(_main())
