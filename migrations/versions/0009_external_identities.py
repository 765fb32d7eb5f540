"""External identities: the (provider, subject) pairs a user signs in with.

* A subject is unique per provider (one account per external identity), and a user holds at most
  one identity per provider.
* Tenant table (RLS on `org_id`, forced). The auth service finds an identity before it knows the
  tenant (the callback of a sign-in), so it may read across tenants, as it does users; the api
  role has no grant (the auth endpoints list and unlink identities).
"""

from alembic import op

from migrations.roles import roles

revision: str = "0009"
down_revision: str | None = "0008"


def upgrade() -> None:
    r = roles()
    op.execute(
        """
        CREATE TABLE external_identities (
            id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
            user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            provider      text NOT NULL CHECK (length(provider) BETWEEN 1 AND 32),
            subject       text NOT NULL CHECK (length(subject) BETWEEN 1 AND 255),
            email         text CHECK (length(email) <= 320),
            created_at    timestamptz NOT NULL DEFAULT now(),
            last_used_at  timestamptz,
            UNIQUE (provider, subject),
            UNIQUE (user_id, provider)
        )
        """
    )
    op.execute("ALTER TABLE external_identities ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE external_identities FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON external_identities"
        " USING (org_id = app_current_org_id()) WITH CHECK (org_id = app_current_org_id())"
    )
    op.execute(
        f'CREATE POLICY auth_identity_lookup ON external_identities FOR SELECT TO "{r.auth}" USING (true)'
    )
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON external_identities TO "{r.auth}"')


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS external_identities")
