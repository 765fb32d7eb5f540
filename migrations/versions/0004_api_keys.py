"""API keys: org-scoped machine credentials for bots, and the one narrow door that verifies them.

A key is `bb_<env>_<public id>_<secret>`; only an HMAC-SHA256 of the secret is stored
(shared/api_keys.py). The api must find a key's row before it knows the tenant, but RLS
(forced) hides every row of `api_keys` outside the bound org. Instead of a cross-tenant read
policy for the api role, a SECURITY DEFINER function owned by the schema owner looks up ONE
row by its public id and, only when the presented hash matches and the key is live, binds the
transaction to the key's org and touches `last_used_at` (at most once a minute, never waiting
on a lock). The api role can execute it, nothing else can, and it reveals nothing to a caller
without the secret except that the public id exists.
"""

from alembic import op

from migrations.roles import roles

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            public_id     text NOT NULL UNIQUE CHECK (public_id ~ '^[0-9a-f]{16}$'),
            secret_hash   bytea NOT NULL CHECK (length(secret_hash) = 32),
            name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            scopes        text[] NOT NULL CHECK (
                              cardinality(scopes) BETWEEN 1 AND 2
                              AND scopes <@ ARRAY['read', 'write']::text[]),
            -- Keys belong to the org: deleting their creator keeps them (the audit log keeps
            -- who created each one).
            created_by    uuid REFERENCES users(id) ON DELETE SET NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            expires_at    timestamptz,
            last_used_at  timestamptz,
            revoked_at    timestamptz,
            revoked_by    uuid REFERENCES users(id) ON DELETE SET NULL
        )
        """
    )
    op.execute("CREATE INDEX api_keys_org_id_idx ON api_keys (org_id, created_at, id)")
    op.execute("ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE api_keys FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON api_keys"
        " USING (org_id = app_current_org_id()) WITH CHECK (org_id = app_current_org_id())"
    )
    r = roles()
    # Only the verification function runs as the owner at run time (the owner cannot log in).
    op.execute(
        f'CREATE POLICY api_key_verification ON api_keys TO "{r.owner}" USING (true) WITH CHECK (true)'
    )
    op.execute(
        """
        CREATE FUNCTION api_key_authenticate(p_public_id text, p_secret_hash bytea)
        RETURNS TABLE (
            id uuid, org_id uuid, name text, scopes text[], secret_hash bytea,
            expires_at timestamptz, revoked_at timestamptz
        )
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER
        SET search_path = pg_catalog, public
        AS $$
        DECLARE
            k api_keys%ROWTYPE;
        BEGIN
            SELECT * INTO k FROM api_keys WHERE api_keys.public_id = p_public_id;
            IF NOT FOUND THEN
                RETURN;
            END IF;
            IF k.secret_hash = p_secret_hash AND k.revoked_at IS NULL
               AND (k.expires_at IS NULL OR k.expires_at > now()) THEN
                PERFORM set_config('app.current_org_id', k.org_id::text, true);
                -- At most one write a minute per key; a concurrent request holding the row
                -- lock already does it, so skip rather than wait.
                UPDATE api_keys SET last_used_at = now()
                 WHERE api_keys.id = (
                     SELECT l.id FROM api_keys l
                      WHERE l.id = k.id
                        AND (l.last_used_at IS NULL OR l.last_used_at < now() - interval '1 minute')
                      FOR UPDATE SKIP LOCKED);
            END IF;
            RETURN QUERY SELECT k.id, k.org_id, k.name, k.scopes, k.secret_hash, k.expires_at,
                                k.revoked_at;
        END $$
        """
    )
    # Functions are executable by PUBLIC by default: only the api role may verify keys.
    op.execute("REVOKE ALL ON FUNCTION api_key_authenticate(text, bytea) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION api_key_authenticate(text, bytea) TO "{r.api}"')
    # Revoking is the only change the api makes; keys are never deleted by it (their history
    # stays listable) and `last_used_at` is the verification function's to write.
    op.execute(f'GRANT SELECT, INSERT, UPDATE (revoked_at, revoked_by) ON api_keys TO "{r.api}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS api_key_authenticate(text, bytea)")
    op.execute("DROP TABLE IF EXISTS api_keys")
