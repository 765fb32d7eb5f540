"""Credentials version on users; the api role's writes narrowed to what the api does.

* `users.credentials_version`: a password reset increments it under the user's row lock; a
  password login creates its session only if the version it checked is still current (checked
  under a lock of the same row), so a login that was already hashing when the reset committed
  can no longer hand out a session on the old password.
* The api role may UPDATE only the columns the api writes (users: name, role; organizations:
  name; sessions: revocation; invitations: revocation; one-time tokens: consumption), and may
  INSERT one-time tokens of the invitation purpose only: an injection in the api could otherwise
  set password hashes or email addresses, or mint magic links and reset tokens.
"""

from alembic import op

from migrations.roles import roles

revision: str = "0007"
down_revision: str | None = "0006"

API_UPDATABLE = {
    "users": "name, role, updated_at",
    "organizations": "name, updated_at",
    "sessions": "revoked_at, revoked_reason",
    "invitations": "revoked_at",
    "one_time_tokens": "consumed_at",
}


def upgrade() -> None:
    r = roles()
    op.execute("ALTER TABLE users ADD COLUMN credentials_version integer NOT NULL DEFAULT 0")
    for table, columns in API_UPDATABLE.items():
        op.execute(f'REVOKE UPDATE ON {table} FROM "{r.api}"')
        op.execute(f'GRANT UPDATE ({columns}) ON {table} TO "{r.api}"')
    # Restrictive: combined with tenant_isolation by AND, for the api role's inserts only.
    op.execute(
        f"CREATE POLICY api_inserts_invitation_tokens ON one_time_tokens AS RESTRICTIVE"
        f" FOR INSERT TO \"{r.api}\" WITH CHECK (purpose = 'invitation')"
    )


def downgrade() -> None:
    r = roles()
    op.execute("DROP POLICY IF EXISTS api_inserts_invitation_tokens ON one_time_tokens")
    for table in API_UPDATABLE:
        op.execute(f'GRANT UPDATE ON {table} TO "{r.api}"')
    op.execute("ALTER TABLE users DROP COLUMN IF EXISTS credentials_version")
