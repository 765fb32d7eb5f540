"""Auth: remember retired refresh-token hashes so reuse of any older token is detected.

`sessions.previous_token_hash` only covers the token just before the current one. A stolen
token that is replayed after two or more rotations would otherwise be merely "unknown" (401)
instead of revealing the theft and revoking the family. Each rotation moves the hash that
falls out of `previous_token_hash` here.
"""

from alembic import op

from migrations.roles import roles

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE session_retired_tokens (
            token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
            session_id  uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            retired_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX session_retired_tokens_session_idx ON session_retired_tokens (session_id)")
    op.execute("ALTER TABLE session_retired_tokens ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE session_retired_tokens FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON session_retired_tokens"
        " USING (org_id = app_current_org_id()) WITH CHECK (org_id = app_current_org_id())"
    )
    r = roles()
    # Like sessions: the auth service finds a presented token before it knows the tenant.
    op.execute(
        f'CREATE POLICY auth_identity_lookup ON session_retired_tokens FOR SELECT TO "{r.auth}" USING (true)'
    )
    op.execute(f'GRANT SELECT, INSERT, DELETE ON session_retired_tokens TO "{r.auth}"')


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS session_retired_tokens")
