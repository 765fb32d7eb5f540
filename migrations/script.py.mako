"""${message}"""
${imports if imports else ""}
# Schema changes: `from alembic import op`, then op.execute(...). Grants name the roles through
# `from migrations.roles import roles` (the names carry DB_ROLE_PREFIX). The file name carries the
# number and git the date; alembic reads branch_labels/depends_on only when a revision sets them.

revision: str = ${repr(up_revision).replace("'", '"')}
down_revision: str | None = ${repr(down_revision).replace("'", '"')}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
