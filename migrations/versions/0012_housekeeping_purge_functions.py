"""Housekeeping: purge dead sessions and spent one-time tokens across orgs, a bounded batch a call.

The hourly purge ran as the auth role through RLS: for each org with dead rows, a transaction
bound to it locked that org's dead rows. No index leads with (org_id, expiry), so every batch
of every org read the whole table's dead rows through the expiry index and filtered the org
out; the batches held their row locks for as long as that read took, and the work grew with
orgs times dead rows.

Now two SECURITY DEFINER functions, owned by the schema owner, executable by the auth role only,
each delete at most `p_limit` dead rows of any org in one statement: candidates come in
expiry order from the expiry (or revocation, consumption) index, locked SKIP LOCKED (a row a
request holds is left for the next round, never waited for), and the count is returned. The
caller runs each call as its own transaction, so no lock outlives one bounded batch; sessions
are read (and their pages cached) before any is locked, and the commit does not wait for the
WAL flush (a lost purge is redone by the next one).

The owner is itself bound by the forced tenant policies. It sees other orgs' rows only through
the `housekeeping_purge` policies below, which apply to the owner alone and only while
`app.housekeeping_purge_before` is set (the functions set it for their own statements and clear
it): rows dead before that instant (never later than now). Unset, as in a migration or in the
api-key function, they match nothing, so the owner sees exactly what it saw before.
"""

from alembic import op

from migrations.roles import roles

revision: str = "0012"
down_revision: str | None = "0011"

MAX_BATCH = 10_000

# The purge cutoff of the running purge function: NULL (no row matches) unless it is set.
_CUTOFF_FUNCTION = """
    CREATE FUNCTION housekeeping_purge_before() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN current_setting('app.housekeeping_purge_before', true) <> ''
                      THEN least(current_setting('app.housekeeping_purge_before', true)::timestamptz,
                                 now()) END $$
"""

# Dead rows, as each table's purge reads them (the cutoff is at most now()).
DEAD = {
    "sessions": "expires_at < housekeeping_purge_before() OR revoked_at < housekeeping_purge_before()",
    # A retired token goes with its session (read through the sessions policy above).
    "session_retired_tokens": (
        "EXISTS (SELECT 1 FROM sessions s WHERE s.id = session_id"
        " AND (s.expires_at < housekeeping_purge_before() OR s.revoked_at < housekeeping_purge_before()))"
    ),
    "one_time_tokens": (
        "expires_at < housekeeping_purge_before() OR consumed_at < housekeeping_purge_before()"
    ),
}

_PURGE_SESSIONS = f"""
    CREATE FUNCTION housekeeping_purge_sessions(p_dead_before timestamptz, p_limit integer)
    RETURNS TABLE (sessions integer, retired_tokens integer, locked_seconds double precision)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    DECLARE
        cutoff timestamptz := least(p_dead_before, now());
        candidates uuid[];
        more uuid[];
        doomed uuid[];
        locked_at timestamptz;
        deleted integer;
        retired integer;
    BEGIN
        IF p_dead_before IS NULL OR p_limit IS NULL OR p_limit < 1 OR p_limit > {MAX_BATCH} THEN
            RAISE EXCEPTION 'housekeeping_purge_sessions: a cutoff and 1..{MAX_BATCH} rows'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM set_config('app.housekeeping_purge_before', cutoff::text, true);
        -- A lost purge commit is purged again next time: no wait for the WAL flush, which
        -- would hold the batch's locks.
        PERFORM set_config('synchronous_commit', 'off', true);
        -- Read first, without locks: expired, then revoked, each in its index's order up to
        -- p_limit, and their retired tokens. Their pages are cached before any row is locked.
        SELECT coalesce(array_agg(id), '{{}}') INTO candidates FROM (
            SELECT s.id FROM sessions s WHERE s.expires_at < cutoff
             ORDER BY s.expires_at LIMIT p_limit) e;
        IF cardinality(candidates) < p_limit THEN
            SELECT coalesce(array_agg(id), '{{}}') INTO more FROM (
                SELECT s.id FROM sessions s
                 WHERE s.revoked_at < cutoff AND s.expires_at >= cutoff
                 ORDER BY s.revoked_at LIMIT p_limit - cardinality(candidates)) r;
            candidates := candidates || more;
        END IF;
        PERFORM count(*) FROM session_retired_tokens t WHERE t.session_id = ANY (candidates);
        -- Then lock what is still dead and not held by anyone else, and delete it.
        locked_at := clock_timestamp();
        SELECT coalesce(array_agg(id), '{{}}') INTO doomed FROM (
            SELECT s.id FROM sessions s
             WHERE s.id = ANY (candidates) AND (s.expires_at < cutoff OR s.revoked_at < cutoff)
             FOR UPDATE SKIP LOCKED) l;
        DELETE FROM session_retired_tokens t WHERE t.session_id = ANY (doomed);
        GET DIAGNOSTICS retired = ROW_COUNT;
        DELETE FROM sessions s WHERE s.id = ANY (doomed);
        GET DIAGNOSTICS deleted = ROW_COUNT;
        PERFORM set_config('app.housekeeping_purge_before', '', true);
        RETURN QUERY SELECT deleted, retired,
            extract(epoch FROM clock_timestamp() - locked_at)::double precision;
    END $$
"""

_PURGE_TOKENS = f"""
    CREATE FUNCTION housekeeping_purge_one_time_tokens(p_spent_before timestamptz, p_limit integer)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    DECLARE
        cutoff timestamptz := least(p_spent_before, now());
        doomed uuid[];
        more uuid[];
        deleted integer;
    BEGIN
        IF p_spent_before IS NULL OR p_limit IS NULL OR p_limit < 1 OR p_limit > {MAX_BATCH} THEN
            RAISE EXCEPTION 'housekeeping_purge_one_time_tokens: a cutoff and 1..{MAX_BATCH} rows'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM set_config('app.housekeeping_purge_before', cutoff::text, true);
        PERFORM set_config('synchronous_commit', 'off', true);
        SELECT coalesce(array_agg(id), '{{}}') INTO doomed FROM (
            SELECT t.id FROM one_time_tokens t WHERE t.expires_at < cutoff
             ORDER BY t.expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED) e;
        IF cardinality(doomed) < p_limit THEN
            SELECT coalesce(array_agg(id), '{{}}') INTO more FROM (
                SELECT t.id FROM one_time_tokens t
                 WHERE t.consumed_at < cutoff AND t.expires_at >= cutoff
                 ORDER BY t.consumed_at LIMIT p_limit - cardinality(doomed) FOR UPDATE SKIP LOCKED) c;
            doomed := doomed || more;
        END IF;
        DELETE FROM one_time_tokens t WHERE t.id = ANY (doomed);
        GET DIAGNOSTICS deleted = ROW_COUNT;
        PERFORM set_config('app.housekeeping_purge_before', '', true);
        RETURN deleted;
    END $$
"""

FUNCTIONS = (
    "housekeeping_purge_sessions(timestamptz, integer)",
    "housekeeping_purge_one_time_tokens(timestamptz, integer)",
)


def upgrade() -> None:
    r = roles()
    op.execute(_CUTOFF_FUNCTION)
    for table, dead in DEAD.items():
        # Read (the WHERE of a DELETE reads), lock (FOR UPDATE needs an UPDATE policy; its
        # WITH CHECK (false) allows no actual update) and delete: the owner only, dead rows only.
        op.execute(
            f'CREATE POLICY housekeeping_purge_read ON {table} FOR SELECT TO "{r.owner}" USING ({dead})'
        )
        op.execute(
            f'CREATE POLICY housekeeping_purge_lock ON {table} FOR UPDATE TO "{r.owner}"'
            f" USING ({dead}) WITH CHECK (false)"
        )
        op.execute(f'CREATE POLICY housekeeping_purge ON {table} FOR DELETE TO "{r.owner}" USING ({dead})')
    op.execute(_PURGE_SESSIONS)
    op.execute(_PURGE_TOKENS)
    # Functions are executable by PUBLIC by default: only the auth role (its housekeeping) may.
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f'GRANT EXECUTE ON FUNCTION {function} TO "{r.auth}"')
    op.execute("REVOKE ALL ON FUNCTION housekeeping_purge_before() FROM PUBLIC")


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    for table in DEAD:
        for policy in ("housekeeping_purge", "housekeeping_purge_lock", "housekeeping_purge_read"):
            op.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS housekeeping_purge_before()")
