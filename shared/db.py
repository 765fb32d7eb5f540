"""The one database engine and session factory, and the tenant-scoped transaction.

Row Level Security is the tenant boundary: `tenant_transaction` sets `app.current_org_id`
with `set_config(..., true)` so the setting lives exactly as long as the transaction and can
never leak to the next user of a pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import Settings
from shared.tracing import instrument_engine

TENANT_SETTING = "app.current_org_id"


def async_url(url: str) -> str:
    """Use the asyncpg driver whatever scheme the operator wrote."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def database_url(settings: Settings) -> str:
    """This process's database as an asyncpg URL; processes that need one refuse to start without."""
    settings.require("database_url")
    return async_url(str(settings.database_url))


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the process's engine; statement timeout bounds any runaway query.

    Its statements are traced (parameterized SQL only) when tracing is on.
    """
    engine = create_async_engine(
        database_url(settings),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.database_statement_timeout_ms),
                "application_name": settings.service_name,
            },
            "timeout": settings.database_connect_timeout_seconds,
            # Client side: a frozen server enforces no statement_timeout.
            "command_timeout": settings.database_command_timeout_seconds,
        },
    )
    # Pre-ping stays on (a database restart must not fail requests), but not with asyncpg's own
    # ping, which wraps `;` in a transaction it rolls back (BEGIN, `;`, ROLLBACK: three round
    # trips, for pgbouncer transaction mode, which is not used here). The generic DB-API ping
    # runs `SELECT 1` in the transaction the checked-out connection then serves: the same
    # liveness check and disconnect handling, and the request's BEGIN comes with it.
    dialect = engine.sync_engine.dialect
    assert isinstance(dialect, DefaultDialect)
    dialect.do_ping = partial(DefaultDialect.do_ping, dialect)  # type: ignore[method-assign]
    instrument_engine(engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The one session factory; objects stay usable after commit (no implicit reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def set_tenant(session: AsyncSession, org_id: UUID) -> None:
    """Bind the current transaction to one organization (transaction-local)."""
    await session.execute(
        text("SELECT set_config(:name, :org, true)"),
        {"name": TENANT_SETTING, "org": str(org_id)},
    )


@asynccontextmanager
async def tenant_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], org_id: UUID
) -> AsyncIterator[AsyncSession]:
    """Open a session and transaction scoped to `org_id`; commit on success, roll back on error."""
    async with sessionmaker() as session, session.begin():
        await set_tenant(session, org_id)
        yield session


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A transaction with no tenant bound: tenant tables show no rows (RLS fails closed)."""
    async with sessionmaker() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers `SELECT 1`."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
