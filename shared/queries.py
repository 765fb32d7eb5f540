"""The SQL of shared/db.py: the tenant binding, the liveness probe, and statements for both drivers.

A `Statement` is written once with named parameters (`:name`, SQLAlchemy's `text()` syntax)
and runs either way: as a `TextClause` in a SQLAlchemy session (transactions), or as its
positional form (`$1, $2, ...`) prepared on the asyncpg connection under SQLAlchemy's pool
(the single-statement reads of the request path, shared/db.py `read_once`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import TextClause, text

TENANT_SETTING = "app.current_org_id"
# The parameter `tenant_bound` adds; shared/db.py passes the org id under this name.
TENANT_PARAM = "tenant_org_id"

# What `text()` takes for a bound parameter: `:name`, not a `::type` cast.
_NAMED = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


@dataclass(frozen=True)
class Statement:
    """One constant SQL statement, in both drivers' parameter styles."""

    named: str
    positional: str = field(init=False)
    names: tuple[str, ...] = field(init=False)
    clause: TextClause = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match[1] not in names:
                names.append(match[1])
            return f"${names.index(match[1]) + 1}"

        object.__setattr__(self, "positional", _NAMED.sub(number, self.named))
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "clause", text(self.named))

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
