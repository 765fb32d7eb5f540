"""The SQL of shared/db.py: the tenant binding, the liveness probe, and the statements it runs.

A `Statement` is one constant SQL statement with named parameters (`:name`, SQLAlchemy's `text()`
syntax), run in a session (`session.execute(statement.clause, ...)`) or on its own
(`shared.db.read_in_one_round_trip`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import TextClause, text

TENANT_SETTING = "app.current_org_id"
# The parameter `tenant_bound` adds; shared/db.py passes the org id under this name.
TENANT_PARAM = "tenant_org_id"


@dataclass(frozen=True)
class Statement:
    """One constant SQL statement and its compiled `text()` clause."""

    named: str
    clause: TextClause = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clause", text(self.named))


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
