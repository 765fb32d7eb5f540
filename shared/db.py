"""The one database engine and session factory, and the two ways a request binds its tenant.

Row Level Security is the tenant boundary: `app.current_org_id` is always set with
`set_config(..., true)`, so the setting lives exactly as long as the transaction and can never
leak to the next user of a pooled connection.

* `transaction(sessionmaker, org_id)`: BEGIN, `set_config`, the statements, COMMIT (writes, pages);
* `read_in_one_round_trip`: ONE statement that binds and reads (`tenant_bound`), outside any
  explicit transaction: PostgreSQL runs it in an implicit transaction of its own, which ends
  with it, and the binding with it. Every authenticated api request loads its caller this way;
* `execute_alone`: the same for a statement that writes (a refresh rotates its session this
  way), through SQLAlchemy in AUTOCOMMIT: no BEGIN, no COMMIT.

The SQL lives in shared/queries.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from uuid import UUID

import asyncpg
from opentelemetry import trace
from sqlalchemy import Executable, RowMapping, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

from shared.queries import BIND_TENANT, PING, TENANT_PARAM, Statement, tenant_bound
from shared.settings import Settings
from shared.tracing import instrument_engine, tracing_active

# `Statement` and `tenant_bound` are re-exported: a statement is written in a queries.py and
# run with the functions here.
_tracer = trace.get_tracer("blockbot.db")
__all__ = [
    "Statement",
    "async_url",
    "create_engine",
    "create_sessionmaker",
    "database_url",
    "execute_alone",
    "ping",
    "read_in_one_round_trip",
    "set_tenant",
    "tenant_bound",
    "transaction",
]


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

    No pre-ping (`SELECT 1`, a round trip per transaction): a pooled connection the server
    closed is replaced at checkout at no cost (`_refuse_closed`). Its statements are traced
    (parameterized SQL only) when tracing is on.
    """
    engine = create_async_engine(
        database_url(settings),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_recycle=1800,
        pool_timeout=settings.database_pool_timeout_seconds,
        # Errors (and the logs and traces made of them) never carry bound values: they include
        # password hashes, token hashes and personal data.
        hide_parameters=True,
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
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    instrument_engine(engine)
    return engine


def _refuse_closed(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, pooled: PoolProxiedConnection
) -> None:
    """The pool's liveness check, at every checkout and without a round trip.

    asyncpg marks its connection closed as soon as the event loop sees the server close it (a
    restart, `pg_terminate_backend`). Such a connection is refused: the pool replaces it, and
    with it every connection as old (the server restarted), and checks the new one (twice at
    most, then `InvalidRequestError`). A connection lost under a statement fails that statement;
    `read_in_one_round_trip` retries its idempotent statement once.
    """
    driver = pooled.driver_connection
    assert isinstance(driver, asyncpg.Connection), "the engine's driver is asyncpg (async_url)"
    if driver.is_closed():
        raise InvalidatePoolError("connection is closed")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The one session factory; objects stay usable after commit (no implicit reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def set_tenant(session: AsyncSession, org_id: UUID) -> None:
    """Bind the current transaction to one organization (transaction-local)."""
    await session.execute(BIND_TENANT.clause, {TENANT_PARAM: str(org_id)})


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession], org_id: UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """A session in a transaction, committed on success, rolled back on error; bound to `org_id`
    when given, else to no tenant (tenant tables then show no rows: RLS fails closed)."""
    async with sessionmaker() as session, session.begin():
        if org_id is not None:
            await set_tenant(session, org_id)
        yield session


async def execute_alone(
    sessionmaker: async_sessionmaker[AsyncSession], statement: Executable, params: Mapping[str, object]
) -> Sequence[RowMapping]:
    """The rows of ONE statement run in an implicit transaction of its own: one round trip.

    The connection is in AUTOCOMMIT (SQLAlchemy's isolation level: the driver sends no BEGIN
    and no COMMIT), so the statement commits as it ends, with any tenant binding it made
    (`set_config(..., true)` lives as long as that implicit transaction). A statement that
    needs its order of work guaranteed must say so in its own SQL (shared/queries.py
    `tenant_bound`). Not retried: the caller decides what a lost answer means.
    """
    engine: AsyncEngine = sessionmaker.kw["bind"]
    async with engine.connect() as connection:
        alone = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return (await alone.execute(statement, params)).mappings().all()


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers `SELECT 1`."""
    async with engine.connect() as conn:
        await conn.execute(PING.clause)


async def read_in_one_round_trip(
    engine: AsyncEngine, statement: Statement, params: Mapping[str, object], *, org_id: UUID | None = None
) -> list[asyncpg.Record]:
    """The rows of one idempotent statement in an implicit transaction of its own: one round trip.

    With `org_id` the statement is a `tenant_bound` one, bound to that org. It runs on the pooled
    connection's asyncpg connection (SQLAlchemy keeps the pool; asyncpg prepares the statement
    once per connection), which skips SQLAlchemy's execution layer: every authenticated api
    request pays for this call. A connection lost under the statement is discarded and the
    statement retried once on another, unless it timed out (a retry would double the wait).
    """
    arguments = statement.arguments(params if org_id is None else {**params, TENANT_PARAM: str(org_id)})
    for attempt in (1, 2):
        pooled = await _check_out(engine)
        try:
            driver = pooled.driver_connection
            assert isinstance(driver, asyncpg.Connection), "the engine's driver is asyncpg (async_url)"
            if not tracing_active():
                return await driver.fetch(statement.positional, *arguments)
            # Past SQLAlchemy, so past its instrumentation: the statement's span is made here.
            with _span(statement):
                return await driver.fetch(statement.positional, *arguments)
        except asyncpg.PostgresError as error:
            if not _connection_level(error):
                raise  # the statement's own error: the connection is idle again, and kept
            await greenlet_spawn(pooled.invalidate, error)
            if attempt == 2:
                raise
        except BaseException as error:  # lost, timed out or cancelled: its state is unknown
            await greenlet_spawn(pooled.invalidate, error if isinstance(error, Exception) else None)
            if not isinstance(error, Exception) or isinstance(error, TimeoutError):
                raise
            if attempt == 2:
                # Two connections in an unknown state (a server going away leaves idle pooled
                # connections mid-protocol, and asyncpg says so with a client error): the
                # database is unavailable, as SQLAlchemy says of a connection it invalidated.
                raise _invalidated(engine, error) from error
        finally:
            await _check_in(engine, pooled)
    raise AssertionError("unreachable")


def _span(statement: Statement) -> AbstractContextManager[trace.Span]:
    attributes = {"db.system": "postgresql", "db.statement": statement.named}  # no bound values
    return _tracer.start_as_current_span("SELECT", kind=trace.SpanKind.CLIENT, attributes=attributes)


async def _check_out(engine: AsyncEngine) -> PoolProxiedConnection:
    """A pooled connection, in SQLAlchemy's greenlet (checking out may open one); a failure to
    connect is wrapped as `engine.connect()` wraps it, so it is the same 503."""
    try:
        return await greenlet_spawn(engine.sync_engine.raw_connection)
    except engine.dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            None, None, error, engine.dialect.loaded_dbapi.Error, hide_parameters=True, dialect=engine.dialect
        ) from error


def _invalidated(engine: AsyncEngine, error: Exception) -> Exception:
    dbapi_error = engine.dialect.loaded_dbapi.Error
    return DBAPIError.instance(
        None,
        None,
        error,
        dbapi_error,
        hide_parameters=True,
        connection_invalidated=True,
        dialect=engine.dialect,
    )


async def _check_in(engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
    """Give the connection back. Into a pool with room that is bookkeeping only; otherwise (an
    overflow connection) the pool closes it, which is I/O and must run in SQLAlchemy's greenlet."""
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool) and pool.checkedin() < pool.size():
        pooled.close()
    else:
        await greenlet_spawn(pooled.close)


def _connection_level(error: asyncpg.PostgresError) -> bool:
    """An error about the session rather than the statement (server shutting down, connection
    failures); a statement timeout is the statement's own."""
    if isinstance(error, asyncpg.QueryCanceledError):
        return False
    return isinstance(error, asyncpg.exceptions.OperatorInterventionError | asyncpg.PostgresConnectionError)
