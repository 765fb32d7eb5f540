"""Which database errors mean "PostgreSQL cannot serve right now", and how they are counted.

Such errors (refused or dropped connections, a server restarting or shutting down, connect or
statement timeouts, an exhausted pool) are not bugs: the request is answered 503 with
`Retry-After`, logged in one line without a traceback, and counted in `db_unavailable_total`.
Anything else from the database stays an unexpected error (500, logged with its traceback).
Connect failures reach us unwrapped (`ConnectionRefusedError`, `TimeoutError`): any `OSError` on
the request path is a dependency that cannot be reached, so it is treated the same way.
"""

from __future__ import annotations

import asyncpg
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc

DB_UNAVAILABLE = Counter(
    "db_unavailable_total",
    "Requests answered 503 because PostgreSQL could not serve them, by reason.",
    ["reason"],
)

# How long a client should wait before retrying (seconds): a restart takes a few.
RETRY_AFTER_SECONDS = 2


def _chain(error: BaseException) -> list[BaseException]:
    """The error, what it wraps (`orig`) and its causes, outermost first, without cycles."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        orig = getattr(current, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None]
        pending += [current.__cause__, current.__context__]
    return seen


def unavailable_reason(error: BaseException) -> str | None:
    """Why `error` means the database is unavailable (a metric label), or None if it does not."""
    for current in _chain(error):
        if isinstance(current, sa_exc.TimeoutError):
            return "pool_exhausted"
        if isinstance(current, asyncpg.TooManyConnectionsError):
            return "too_many_connections"
        if isinstance(current, asyncpg.exceptions.OperatorInterventionError):
            # admin/crash shutdown, "the database system is starting up", query canceled
            return "statement_timeout" if isinstance(current, asyncpg.QueryCanceledError) else "restarting"
        if isinstance(current, asyncpg.PostgresConnectionError):
            return "disconnected"
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return "disconnected"  # "connection is closed"; other interface errors are bugs
        if isinstance(current, TimeoutError):
            return "timeout"
        if isinstance(current, ConnectionError | OSError):
            return "unreachable"
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return "disconnected"
    return None
