"""Users: `disabled_at`, set by an operator (python -m services.admin disable).

A disabled user cannot log in or refresh; disabling also revokes every session of the user, so
its access tokens stop at once. NULL means enabled; the column keeps when it happened.
"""

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    # Nullable without a default: a catalogue-only change, no table rewrite, no long lock.
    op.execute("ALTER TABLE users ADD COLUMN disabled_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN IF EXISTS disabled_at")
