"""Organizations: the tenant policy reads the bound org once per statement, not once per row.

`id = app_current_org_id()` is a stable expression: PostgreSQL evaluates it for every row a scan
of `organizations` filters (a GUC lookup and a uuid parse each time), which is most of what
`GET /me` costs the database beyond the owner's plain `id = $1` when the table is scanned.
Written `id = (SELECT app_current_org_id())` it becomes an InitPlan: evaluated once, then
compared as a parameter. The value, and so the isolation, are the same: NULL when no org is
bound (no row matches), the bound org otherwise.

Only here: `organizations` is read by its unique id, so the planner's row estimate is one row
either way. The tables listed by org (users, audit_log, ...) keep the plain expression, which
the planner evaluates while planning and so estimates from the bound org's statistics; as an
InitPlan it would be an unknown value with an average org's estimate, and a big org's page
would be read by a bitmap scan and a sort of all its rows instead of straight from the index.
"""

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"


def _policy(expression: str) -> str:
    return (
        "ALTER POLICY tenant_isolation ON organizations"
        f" USING (id = {expression}) WITH CHECK (id = {expression})"
    )


def upgrade() -> None:
    op.execute(_policy("(SELECT app_current_org_id())"))


def downgrade() -> None:
    op.execute(_policy("app_current_org_id()"))
