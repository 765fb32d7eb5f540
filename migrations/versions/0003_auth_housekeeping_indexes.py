"""Auth: indexes for the hourly housekeeping (dead sessions, spent one-time tokens).

The purge looks rows up by expiry, revocation and consumption time; without these it would scan
both tables every hour.
"""

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.execute("CREATE INDEX sessions_expires_at_idx ON sessions (expires_at)")
    op.execute("CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL")
    op.execute("CREATE INDEX one_time_tokens_expires_at_idx ON one_time_tokens (expires_at)")
    op.execute(
        "CREATE INDEX one_time_tokens_consumed_at_idx ON one_time_tokens (consumed_at)"
        " WHERE consumed_at IS NOT NULL"
    )


def downgrade() -> None:
    for index in (
        "one_time_tokens_consumed_at_idx",
        "one_time_tokens_expires_at_idx",
        "sessions_revoked_at_idx",
        "sessions_expires_at_idx",
    ):
        op.execute(f"DROP INDEX IF EXISTS {index}")
