"""Second factors: TOTP, recovery codes, passkeys; the session's authentication level; the org policy.

* `totp_factors`: one per user, the secret encrypted (AES-GCM) under the key named by `key_id`
  (TOTP_ENCRYPTION_KEYS); `enabled_at` NULL while the enrolment awaits its first code;
  `last_used_step` is the newest accepted time step (a code is accepted once).
* `recovery_codes`: SHA-256 of each single-use code (they carry 50 random bits: no slow hash).
* `webauthn_credentials`: passkeys; the auth role may read them across tenants (a passwordless
  sign-in learns the user from the credential), like users and sessions.
* `sessions.amr`, `acr`, `auth_time`: how the session was entered and when the user last proved
  it; a refresh mints tokens at that level. Sessions from before are `aal1`, authenticated at
  the epoch.
* `organizations.require_second_factor`: set by an owner through the api (which may update only
  that column and the name).
"""

from alembic import op

from migrations.roles import roles

revision: str = "0010"
down_revision: str | None = "0009"

FACTOR_TABLES = ("totp_factors", "recovery_codes", "webauthn_credentials")


def upgrade() -> None:
    r = roles()
    op.execute(
        """
        CREATE TABLE totp_factors (
            user_id            uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            org_id             uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            secret_ciphertext  bytea NOT NULL,
            key_id             text NOT NULL,
            enabled_at         timestamptz,
            last_used_step     bigint NOT NULL DEFAULT 0,
            created_at         timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE recovery_codes (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            code_hash   bytea NOT NULL CHECK (length(code_hash) = 32),
            used_at     timestamptz,
            created_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (user_id, code_hash)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE webauthn_credentials (
            id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id           uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            credential_id    bytea NOT NULL UNIQUE CHECK (length(credential_id) BETWEEN 1 AND 1023),
            public_key       bytea NOT NULL,
            sign_count       bigint NOT NULL DEFAULT 0,
            name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            backup_eligible  boolean NOT NULL DEFAULT false,
            transports       text[] NOT NULL DEFAULT '{}',
            created_at       timestamptz NOT NULL DEFAULT now(),
            last_used_at     timestamptz
        )
        """
    )
    op.execute("CREATE INDEX webauthn_credentials_user_idx ON webauthn_credentials (user_id, created_at)")
    for table in FACTOR_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table}"
            " USING (org_id = app_current_org_id()) WITH CHECK (org_id = app_current_org_id())"
        )
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{r.auth}"')
    op.execute(
        f'CREATE POLICY auth_identity_lookup ON webauthn_credentials FOR SELECT TO "{r.auth}" USING (true)'
    )

    op.execute("ALTER TABLE sessions ADD COLUMN amr text[] NOT NULL DEFAULT '{}'")
    op.execute("ALTER TABLE sessions ADD COLUMN acr text NOT NULL DEFAULT 'aal1'")
    # Sessions that exist already count as authenticated long ago (the epoch, as a token without
    # `auth_time`): a step-up asks them to re-authenticate. (An UPDATE from created_at would see
    # no row: RLS is forced and a migration binds no tenant.)
    op.execute("ALTER TABLE sessions ADD COLUMN auth_time timestamptz NOT NULL DEFAULT 'epoch'")
    op.execute("ALTER TABLE sessions ALTER COLUMN auth_time SET DEFAULT now()")

    op.execute("ALTER TABLE organizations ADD COLUMN require_second_factor boolean NOT NULL DEFAULT false")
    op.execute(f'GRANT UPDATE (require_second_factor) ON organizations TO "{r.api}"')


def downgrade() -> None:
    r = roles()
    op.execute(f'REVOKE UPDATE (require_second_factor) ON organizations FROM "{r.api}"')
    op.execute("ALTER TABLE organizations DROP COLUMN IF EXISTS require_second_factor")
    for column in ("auth_time", "acr", "amr"):
        op.execute(f"ALTER TABLE sessions DROP COLUMN IF EXISTS {column}")
    op.execute(f"DROP TABLE IF EXISTS {', '.join(FACTOR_TABLES)}")
