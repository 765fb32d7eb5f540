"""`api_key_authenticate` describes a key only to a caller holding its secret.

Until now it returned the row (org, name, scopes, secret hash, expiry, revocation) for any
public id, matching secret or not, so whatever could call it as the api role (an injection in
the api, for one) learnt every key's org and hash from its public id alone. Now it returns no
row unless the presented hash matches: a wrong secret reads exactly as an unknown id. A
revoked or expired key with its right secret is still described (the api counts the reason)
and still binds nothing.
"""

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"

_HEAD = """
    CREATE OR REPLACE FUNCTION api_key_authenticate(p_public_id text, p_secret_hash bytea)
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
"""

_TAIL = """
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


def upgrade() -> None:
    # CREATE OR REPLACE keeps the owner and the grants (EXECUTE for the api role only).
    op.execute(
        _HEAD
        + """
        SELECT * INTO k FROM api_keys
         WHERE api_keys.public_id = p_public_id AND api_keys.secret_hash = p_secret_hash;
"""
        + _TAIL
    )


def downgrade() -> None:
    op.execute(_HEAD + "SELECT * INTO k FROM api_keys WHERE api_keys.public_id = p_public_id;" + _TAIL)
