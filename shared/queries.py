"""The SQL of shared/db.py: the tenant binding, the liveness probe, and the statements it runs.

A `Statement` is one constant SQL statement with named parameters (`:name`, SQLAlchemy's `text()`
syntax), run in a session (`session.execute(statement.clause, ...)`) or, in its positional form
compiled by SQLAlchemy for asyncpg, on its own (`shared.db.read_in_one_round_trip`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import TextClause, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

TENANT_SETTING = "app.current_org_id"
# The parameter `tenant_bound` adds; shared/db.py passes the org id under this name.
TENANT_PARAM = "tenant_org_id"
_ASYNCPG = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Statement:
    """One constant SQL statement: its `text()` clause, and its asyncpg form (`$1, $2, ...`)."""

    named: str
    clause: TextClause = field(init=False, repr=False, compare=False)
    positional: str = field(init=False, repr=False, compare=False)
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        clause = text(self.named)
        compiled = clause.compile(dialect=_ASYNCPG)
        object.__setattr__(self, "clause", clause)
        object.__setattr__(self, "positional", str(compiled))
        object.__setattr__(self, "names", tuple(compiled.positiontup or ()))

    def arguments(self, params: Mapping[str, object]) -> list[object]:
        """The values in `$n` order (a missing one is a KeyError: a bug in the caller)."""
        return [params[name] for name in self.names]


def tenant_bound(select: str) -> Statement:
    """`select` as one statement that first binds the tenant (`:tenant_org_id`), then reads.

    The order is structural, not a planner accident: the query is a LATERAL subquery that
    refers to the binding row, and neither side can be flattened (OFFSET 0), so PostgreSQL must
    produce the binding row (running `set_config`) before it starts any scan of the query, and
    so before Row Level Security evaluates `app_current_org_id()`. Were that ever not so, RLS
    would see no tenant and return no rows: it fails closed, never open.
    """
    # `select` is the caller's constant SQL (values are bound parameters), never input.
    return Statement(
        f"SELECT q.* FROM (SELECT set_config('{TENANT_SETTING}', :{TENANT_PARAM}, true) AS tenant"
        " OFFSET 0) AS bind"
        f" CROSS JOIN LATERAL (SELECT * FROM ({select}) AS inner_query"
        " WHERE bind.tenant IS NOT NULL OFFSET 0) AS q"
    )


# Binds the current transaction to one organization (transaction-local: `true`).
BIND_TENANT = Statement(f"SELECT set_config('{TENANT_SETTING}', :{TENANT_PARAM}, true)")
PING = Statement("SELECT 1")
