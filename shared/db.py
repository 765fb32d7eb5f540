"""The one database engine and session factory, the tenant-scoped transaction and tenant reads.

Row Level Security is the tenant boundary: `app.current_org_id` is always set with
`set_config(..., true)`, so the setting lives exactly as long as the transaction and can never
leak to the next user of a pooled connection. Two ways to bind it:

* `tenant_transaction`: BEGIN, `set_config`, the statements, COMMIT (writes);
* `tenant_read`: ONE statement that binds and reads (`tenant_bound`), run outside any explicit
  transaction: PostgreSQL runs it in an implicit transaction of its own, which ends with it,
  and the binding with it. One round trip.

The single-statement reads are the request path's hot spot, so they skip SQLAlchemy's
execution layer: SQLAlchemy stays the engine and the pool, and the statement is prepared once
per pooled connection on its asyncpg connection and executed there (`read_once`). The SQL
itself lives in shared/queries.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from asyncpg.exceptions import InvalidCachedStatementError
from asyncpg.prepared_stmt import PreparedStatement
from opentelemetry import trace
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from shared.queries import BIND_TENANT, PING, TENANT_PARAM, Statement, tenant_bound
from shared.settings import Settings
from shared.tracing import instrument_engine, tracing_active

# `Statement` and `tenant_bound` are re-exported: a statement is written in a queries.py and
# run with the functions here.
__all__ = [
    "Row",
    "Statement",
    "TenantScope",
    "async_url",
    "create_engine",
    "create_sessionmaker",
    "database_url",
    "ping",
    "read_once",
    "set_tenant",
    "tenant_bound",
    "tenant_read",
    "tenant_transaction",
    "transaction",
]

T = TypeVar("T")


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
    the api retries its idempotent first statements (`read_once`, `TenantScope`).
    """
    if _driver(pooled).is_closed():
        raise InvalidatePoolError("connection is closed")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The one session factory; objects stay usable after commit (no implicit reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def set_tenant(session: AsyncSession, org_id: UUID) -> None:
    """Bind the current transaction to one organization (transaction-local)."""
    await session.execute(BIND_TENANT.clause, {TENANT_PARAM: str(org_id)})


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
        await conn.execute(PING.clause)


class Row(asyncpg.Record):
    """A row of `read_once`: by name (`row["id"]`, `Model(**row)`) or as an attribute (`row.id`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def tenant_read(
    engine: AsyncEngine, org_id: UUID, statement: Statement, params: Mapping[str, object]
) -> list[Row]:
    """Run a `tenant_bound` statement as one round trip in an implicit transaction; its rows."""
    return await read_once(engine, statement, {**params, TENANT_PARAM: str(org_id)})


# Where a pooled connection keeps its prepared statements (SQLAlchemy clears a connection's
# `info` when it replaces the connection, so they never outlive it).
_PREPARED = "blockbot_prepared"
_tracer = trace.get_tracer("blockbot.db")


async def read_once(engine: AsyncEngine, statement: Statement, params: Mapping[str, object]) -> list[Row]:
    """Run one idempotent statement in an implicit transaction of its own (one round trip).

    A statement that fails with anything but an error PostgreSQL reports for it (the
    connection lost under it, a server shutting down) leaves its connection in an unknown
    state: as SQLAlchemy does on a disconnect, the pool's connections of that age are
    replaced, and the statement is retried once on a new one, unless it timed out (a retry
    would double the wait). A prepared statement a schema change made stale is prepared again
    and retried once.
    """
    arguments = statement.arguments(params)
    for attempt in (1, 2):
        pooled = await _checkout(engine)
        try:
            if tracing_active():
                with _tracer.start_as_current_span(
                    "SELECT",
                    kind=trace.SpanKind.CLIENT,
                    attributes={"db.system": "postgresql", "db.statement": statement.named},
                ):
                    return await _fetch(pooled, statement, arguments)
            return await _fetch(pooled, statement, arguments)
        except InvalidCachedStatementError:
            pooled.info.pop(_PREPARED, None)
            if attempt == 2:
                raise
        except asyncpg.PostgresError as error:
            if not _connection_level(error):
                raise  # the statement's own error: the connection is idle again, and kept
            _invalidate_pool(engine, pooled, error)
            if attempt == 2:
                raise
        except Exception as error:
            _invalidate_pool(engine, pooled, error)
            if attempt == 2 or isinstance(error, TimeoutError):
                raise
        except BaseException:
            # Cancelled in the middle of a statement: the connection's state is unknown.
            pooled.invalidate()
            raise
        finally:
            pooled.close()  # back to the pool (a new connection replaces an invalidated one)
    raise AssertionError("unreachable")


def _connection_level(error: asyncpg.PostgresError) -> bool:
    """An error about the session rather than the statement (server shutting down, connection
    failures); a statement timeout is the statement's own."""
    if isinstance(error, asyncpg.QueryCanceledError):
        return False
    return isinstance(error, asyncpg.exceptions.OperatorInterventionError | asyncpg.PostgresConnectionError)


def _invalidate_pool(engine: AsyncEngine, pooled: PoolProxiedConnection, error: BaseException) -> None:
    """Discard `pooled` and have the pool replace every connection as old at its next checkout.

    What SQLAlchemy does itself on a disconnect (`Connection._handle_dbapi_exception`): when the
    server goes away, all its connections are gone. Those of a shutting-down server can even
    look open for a moment: asyncpg refuses to use them (it read the server's FATAL error
    while idle) before it sees the socket close.
    """
    engine.sync_engine.pool._invalidate(pooled, error)


def _driver(pooled: PoolProxiedConnection) -> asyncpg.Connection:
    driver = pooled.driver_connection
    assert isinstance(driver, asyncpg.Connection), "the engine's driver is asyncpg (async_url)"
    return driver


async def _checkout(engine: AsyncEngine) -> PoolProxiedConnection:
    """A pooled connection whose asyncpg connection is open (the pool's `_refuse_closed`)."""
    try:
        # In a greenlet: the pool may have to open a connection, which SQLAlchemy awaits there.
        return await greenlet_spawn(engine.sync_engine.raw_connection)
    except engine.dialect.loaded_dbapi.Error as error:
        # Wrapped as `engine.connect()` would (a refused connection is then the same 503).
        raise DBAPIError.instance(
            None,
            None,
            error,
            engine.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=engine.dialect,
        ) from error


async def _fetch(pooled: PoolProxiedConnection, statement: Statement, arguments: list[object]) -> list[Row]:
    prepared: dict[str, PreparedStatement[Row]] = pooled.info.setdefault(_PREPARED, {})
    ready = prepared.get(statement.positional)
    if ready is None:
        ready = await _driver(pooled).prepare(statement.positional, record_class=Row)
        prepared[statement.positional] = ready
    return await ready.fetch(*arguments)


class TenantScope:
    """One request's access to its tenant's data: single bound statements, or one transaction.

    Without a sessionmaker every `read` is a `tenant_read` (one round trip each). With one, the
    transaction opens with the first `read` (the statement that binds the tenant for the rest of
    it) or with `transaction()` (a plain binding); that first statement is retried once, in a
    new transaction, when the pooled connection turns out dead (nothing was done in it yet).
    `finish` commits or rolls back.
    """

    def __init__(
        self,
        org_id: UUID,
        engine: AsyncEngine | None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.org_id = org_id
        self._engine = engine
        self._sessionmaker = sessionmaker
        self.session: AsyncSession | None = None

    @classmethod
    def in_transaction(cls, session: AsyncSession, org_id: UUID) -> TenantScope:
        """A scope reading in an open transaction bound to `org_id` (e.g. a `tenant_transaction`)."""
        scope = cls(org_id, None)
        scope.session = session
        return scope

    async def read(
        self, statement: Statement, params: Mapping[str, object], row: Callable[..., T]
    ) -> list[T]:
        """The rows of a `tenant_bound` statement, each made into `row(**columns)`."""
        if self.session is None and self._sessionmaker is None:
            assert self._engine is not None, "a scope without a transaction reads through an engine"
            return [row(**r) for r in await tenant_read(self._engine, self.org_id, statement, params)]
        bound = {**params, TENANT_PARAM: str(self.org_id)}
        if self.session is not None:
            result = await self.session.execute(statement.clause, bound)
            return [row(**r._mapping) for r in result]
        return [row(**r._mapping) for r in await self._open(statement, bound)]

    async def transaction(self) -> AsyncSession:
        """The scope's transaction, opened (and bound) now unless a `read` already did."""
        if self.session is None:
            if self._sessionmaker is None:
                raise RuntimeError("this scope reads with single statements; it has no transaction")
            await self._open(BIND_TENANT, {TENANT_PARAM: str(self.org_id)})
        assert self.session is not None
        return self.session

    async def _open(self, statement: Statement, bound: dict[str, object]) -> list[Any]:
        assert self._sessionmaker is not None
        for attempt in (1, 2):
            session = self._sessionmaker()
            try:
                await session.begin()
                rows = list((await session.execute(statement.clause, bound)).all())
            except DBAPIError as error:
                await session.close()
                if attempt == 2 or not error.connection_invalidated:
                    raise
                continue
            except BaseException:
                await session.close()
                raise
            self.session = session
            return rows
        raise AssertionError("unreachable")

    async def finish(self, ok: bool) -> None:
        """Commit (or roll back) and release the transaction, if one was opened."""
        session, self.session = self.session, None
        if session is None:
            return
        try:
            if ok:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()
