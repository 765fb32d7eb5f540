"""Audit log: the primary key is (org_id, id), the one index its pages can be read from.

A page is one org's events newest first (`ORDER BY id DESC` under RLS's `org_id = ...`). With a
primary key on `id` alone PostgreSQL may read a page by walking that key backwards and filtering
other orgs' events out: cheap for an org holding a large share of the table, which is the plan
a cached generic plan keeps; for a small org it then walks most of the table. With the key on
(org_id, id) every page reads exactly its org's rows in order, and the separate
(org_id, id DESC) index is the key itself. Ids stay unique (identity), and nothing looks an
event up by id alone.
"""

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey")
    op.execute("DROP INDEX IF EXISTS audit_log_org_id_idx")
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (org_id, id)")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey")
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id)")
    op.execute("CREATE INDEX audit_log_org_id_idx ON audit_log (org_id, id DESC)")
