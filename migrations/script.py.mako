"""${message}"""
${imports if imports else ""}
# Schema changes: `from alembic import op`, then op.execute(...). Grants name the roles through
# `from migrations.roles import roles` (the names carry DB_ROLE_PREFIX). The file name carries the
# number and git the date; branch_labels and depends_on are written only when given (alembic's
# default for an absent one is None).

revision: str = ${repr(up_revision).replace("'", '"')}
down_revision: str | None = ${repr(down_revision).replace("'", '"')}
% if branch_labels:
branch_labels = ${repr(branch_labels).replace("'", '"')}
% endif
% if depends_on:
depends_on = ${repr(depends_on).replace("'", '"')}
% endif


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
