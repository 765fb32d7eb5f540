"""Initial schema: organizations, users, sessions, one-time tokens, invitations, audit log.

Every tenant table has RLS enabled and forced with a fail-closed policy on
`app.current_org_id`; the grants give each runtime role only what it needs.
"""

from alembic import op

from migrations.roles import roles

revision: str = "0001"
down_revision: str | None = None

TENANT_TABLES = ("users", "sessions", "one_time_tokens", "invitations", "audit_log")


def upgrade() -> None:
    r = roles()
    # NULL when unset or empty, so `org_id = app_current_org_id()` is never true: fail closed.
    op.execute(
        """
        CREATE FUNCTION app_current_org_id() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT nullif(current_setting('app.current_org_id', true), '')::uuid $$
        """
    )
    op.execute(
        """
        CREATE TABLE organizations (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE users (
            id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            org_id             uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            email              text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
            name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            role               text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            password_hash      text,
            email_verified_at  timestamptz,
            created_at         timestamptz NOT NULL DEFAULT now(),
            updated_at         timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))")
    op.execute("CREATE INDEX users_org_id_idx ON users (org_id, created_at, id)")
    op.execute(
        """
        CREATE TABLE sessions (
            id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            org_id               uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            user_id              uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash           bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
            previous_token_hash  bytea CHECK (length(previous_token_hash) = 32),
            generation           integer NOT NULL DEFAULT 0,
            rotated_at           timestamptz,
            created_at           timestamptz NOT NULL DEFAULT now(),
            last_used_at         timestamptz NOT NULL DEFAULT now(),
            expires_at           timestamptz NOT NULL,
            revoked_at           timestamptz,
            revoked_reason       text,
            user_agent           text,
            ip_address           inet
        )
        """
    )
    op.execute(
        "CREATE INDEX sessions_previous_token_hash_idx ON sessions (previous_token_hash)"
        " WHERE previous_token_hash IS NOT NULL"
    )
    op.execute("CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at)")
    op.execute(
        """
        CREATE TABLE invitations (
            id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            email        text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
            role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
            invited_by   uuid REFERENCES users(id) ON DELETE SET NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            expires_at   timestamptz NOT NULL,
            accepted_at  timestamptz,
            revoked_at   timestamptz
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX invitations_pending_email_key ON invitations (org_id, lower(email))"
        " WHERE accepted_at IS NULL AND revoked_at IS NULL"
    )
    op.execute("CREATE INDEX invitations_org_id_idx ON invitations (org_id, created_at, id)")
    op.execute(
        """
        CREATE TABLE one_time_tokens (
            id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            org_id         uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            user_id        uuid REFERENCES users(id) ON DELETE CASCADE,
            invitation_id  uuid REFERENCES invitations(id) ON DELETE CASCADE,
            purpose        text NOT NULL CHECK (purpose IN
                               ('magic_link', 'email_verification', 'password_reset', 'invitation')),
            token_hash     bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
            expires_at     timestamptz NOT NULL,
            consumed_at    timestamptz,
            created_at     timestamptz NOT NULL DEFAULT now(),
            CHECK ((purpose = 'invitation') = (invitation_id IS NOT NULL)),
            CHECK (purpose = 'invitation' OR user_id IS NOT NULL)
        )
        """
    )
    op.execute("CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose)")
    # No foreign key to organizations: the audit trail outlives what it describes.
    op.execute(
        """
        CREATE TABLE audit_log (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            org_id         uuid NOT NULL,
            actor_user_id  uuid,
            action         text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
            target_type    text,
            target_id      text,
            details        jsonb NOT NULL DEFAULT '{}'::jsonb,
            request_id     text,
            ip_address     inet,
            created_at     timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX audit_log_org_id_idx ON audit_log (org_id, id DESC)")
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )

    # --- Row Level Security: enabled and forced (the owner is subject to it too) -------------
    op.execute("ALTER TABLE organizations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE organizations FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON organizations"
        " USING (id = app_current_org_id()) WITH CHECK (id = app_current_org_id())"
    )
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table}"
            " USING (org_id = app_current_org_id()) WITH CHECK (org_id = app_current_org_id())"
        )
    # The auth service must find identities before it knows the tenant (login by email,
    # refresh by token hash, one-time token by hash). It may read across tenants, never write.
    for table in ("users", "sessions", "one_time_tokens"):
        op.execute(f'CREATE POLICY auth_identity_lookup ON {table} FOR SELECT TO "{r.auth}" USING (true)')

    # --- grants: least privilege per runtime role --------------------------------------------
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{r.auth}", "{r.api}"')
    grants = {
        r.auth: {
            "organizations": "SELECT, INSERT, UPDATE, DELETE",
            "users": "SELECT, INSERT, UPDATE, DELETE",
            "sessions": "SELECT, INSERT, UPDATE, DELETE",
            "one_time_tokens": "SELECT, INSERT, UPDATE, DELETE",
            "invitations": "SELECT, UPDATE",
            "audit_log": "INSERT",
        },
        r.api: {
            "organizations": "SELECT, UPDATE",
            "users": "SELECT, UPDATE, DELETE",
            "sessions": "SELECT, UPDATE",
            "one_time_tokens": "SELECT, INSERT, UPDATE",
            "invitations": "SELECT, INSERT, UPDATE",
            "audit_log": "SELECT, INSERT",
        },
    }
    for role, tables in grants.items():
        for table, privileges in tables.items():
            op.execute(f'GRANT {privileges} ON {table} TO "{role}"')


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS audit_log, one_time_tokens, invitations, sessions, users, organizations CASCADE"
    )
    op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.execute("DROP FUNCTION IF EXISTS app_current_org_id()")
