"""The one database engine and session factory, the tenant-scoped transaction and tenant reads.

Row Level Security is the tenant boundary: `app.current_org_id` is always set with
`set_config(..., true)`, so the setting lives exactly as long as the transaction and can never
leak to the next user of a pooled connection. Two ways to bind it:

* `tenant_transaction`: BEGIN, `set_config`, the statements, COMMIT (writes);
* `tenant_read`: ONE statement that binds and reads (`tenant_bound`), run outside any explicit
  transaction: PostgreSQL runs it in an implicit transaction of its own, which ends with it,
  and the binding with it. One round trip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from uuid import UUID

from sqlalchemy import Row, TextClause, text
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import Settings
from shared.tracing import instrument_engine

TENANT_SETTING = "app.current_org_id"
# The bound parameter `tenant_bound` adds; callers pass the org id under this name.
TENANT_PARAM = "tenant_org_id"


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


def create_engine(settings: Settings, *, pre_ping: bool = True) -> AsyncEngine:
    """Create the process's engine; statement timeout bounds any runaway query.

    `pre_ping=False` for a process that handles dropped connections itself by retrying
    (the api: `tenant_read`, and the first statement of its transactions).
    Its statements are traced (parameterized SQL only) when tracing is on.
    """
    engine = create_async_engine(
        database_url(settings),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=pre_ping,
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


def tenant_bound(select: str) -> TextClause:
    """`select` as one statement that first binds the tenant (`:tenant_org_id`), then reads.

    The order is structural, not a planner accident: the query is a LATERAL subquery that
    refers to the binding row, and neither side can be flattened (OFFSET 0), so PostgreSQL must
    produce the binding row (running `set_config`) before it starts any scan of the query, and
    so before Row Level Security evaluates `app_current_org_id()`. Were that ever not so, RLS
    would see no tenant and return no rows: it fails closed, never open.
    """
    # `select` is the caller's constant SQL (values are bound parameters), never input.
    return text(
        f"SELECT q.* FROM (SELECT set_config('{TENANT_SETTING}', :{TENANT_PARAM}, true) AS tenant"  # noqa: S608
        " OFFSET 0) AS bind"
        f" CROSS JOIN LATERAL (SELECT * FROM ({select}) AS inner_query"
        " WHERE bind.tenant IS NOT NULL OFFSET 0) AS q"
    )


async def tenant_read(
    engine: AsyncEngine, org_id: UUID, statement: TextClause, params: dict[str, object]
) -> list[Row[Any]]:
    """Run a `tenant_bound` statement as one round trip in an implicit transaction; its rows.

    The pool does not ping connections (a round trip per request): a connection the server
    dropped (restart, failover) fails this idempotent read, SQLAlchemy invalidates the pool's
    connections of that age, and the read is retried once on a fresh one.
    """
    return await read_once(engine, statement, {**params, TENANT_PARAM: str(org_id)})


async def read_once(engine: AsyncEngine, statement: TextClause, params: dict[str, object]) -> list[Row[Any]]:
    """Run one idempotent statement in an implicit transaction of its own (one round trip),
    retried once on a fresh connection when the pooled one turns out dead."""
    for attempt in (1, 2):
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                return list((await conn.execute(statement, params)).all())
        except DBAPIError as error:
            if attempt == 2 or not error.connection_invalidated:
                raise
    raise AssertionError("unreachable")


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

    async def read(self, statement: TextClause, params: dict[str, object]) -> list[Row[Any]]:
        """Rows of a `tenant_bound` statement."""
        bound = {**params, TENANT_PARAM: str(self.org_id)}
        if self.session is not None:
            return list((await self.session.execute(statement, bound)).all())
        if self._sessionmaker is None:
            assert self._engine is not None, "a scope without a transaction reads through an engine"
            return await tenant_read(self._engine, self.org_id, statement, params)
        return await self._open(statement, bound)

    async def transaction(self) -> AsyncSession:
        """The scope's transaction, opened (and bound) now unless a `read` already did."""
        if self.session is None:
            if self._sessionmaker is None:
                raise RuntimeError("this scope reads with single statements; it has no transaction")
            await self._open(_BIND, {TENANT_PARAM: str(self.org_id)})
        assert self.session is not None
        return self.session

    async def _open(self, statement: TextClause, bound: dict[str, object]) -> list[Row[Any]]:
        assert self._sessionmaker is not None
        for attempt in (1, 2):
            session = self._sessionmaker()
            try:
                await session.begin()
                rows = list((await session.execute(statement, bound)).all())
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


_BIND = text(f"SELECT set_config('{TENANT_SETTING}', :{TENANT_PARAM}, true)")
