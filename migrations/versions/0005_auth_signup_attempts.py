"""Auth: sign-up attempts. A registration of an unverified address owns nothing until verified.

Before, the first registration created the organization and its unverified owner, and a later
registration of the same address replaced the pending password: whoever registered last chose
the password the mailbox owner's click activated (account pre-hijacking). Now every registration
is its own row here (its own token hash, password hash, name and org name); verification creates
the organization and the owner from exactly one attempt, and only with that attempt's password.

Not a tenant table (there is no organization yet): only the auth role may touch it.

Existing unverified sign-ups are carried over: each still valid verification token becomes an
attempt holding the pending password, then the empty organizations are dropped.
"""

from alembic import op

from migrations.roles import roles

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE signup_attempts (
            id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 320
                               AND email = lower(email)),
            token_hash     bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
            password_hash  text NOT NULL,
            name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            org_name       text NOT NULL CHECK (length(org_name) BETWEEN 1 AND 200),
            started_at     timestamptz NOT NULL DEFAULT now(),
            created_at     timestamptz NOT NULL DEFAULT now(),
            expires_at     timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX signup_attempts_email_idx ON signup_attempts (email, created_at)")
    op.execute("CREATE INDEX signup_attempts_expires_at_idx ON signup_attempts (expires_at)")
    r = roles()
    op.execute(f'GRANT SELECT, INSERT, DELETE ON signup_attempts TO "{r.auth}"')

    # Carry pending sign-ups over. This runs as the schema owner, which RLS binds only while it
    # is forced: lift that for these statements, inside the migration's transaction.
    for table in ("organizations", "users", "one_time_tokens"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(
        """
        INSERT INTO signup_attempts (email, token_hash, password_hash, name, org_name,
                                     started_at, created_at, expires_at)
        SELECT lower(u.email), t.token_hash, u.password_hash, u.name, o.name,
               u.created_at, t.created_at, t.expires_at
        FROM users u
        JOIN organizations o ON o.id = u.org_id
        JOIN one_time_tokens t ON t.user_id = u.id AND t.purpose = 'email_verification'
        WHERE u.email_verified_at IS NULL AND u.password_hash IS NOT NULL
          AND t.consumed_at IS NULL AND t.expires_at > now()
        """
    )
    op.execute(
        """
        DELETE FROM organizations o
        WHERE EXISTS (SELECT 1 FROM users u WHERE u.org_id = o.id AND u.email_verified_at IS NULL)
          AND NOT EXISTS (SELECT 1 FROM users u WHERE u.org_id = o.id
                          AND u.email_verified_at IS NOT NULL)
        """
    )
    for table in ("organizations", "users", "one_time_tokens"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS signup_attempts")
