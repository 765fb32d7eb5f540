"""Every query on a hot path reads the big tables through an index.

A scaled-down copy of a large deployment (a few tens of thousands of rows, one big tenant,
ANALYZEd) in a database of its own. The real query functions run as the real roles, through
the real engine; PostgreSQL's auto_explain sends the plan of every statement they execute,
nested ones included (the api-key function's body), back to the client, where the test reads
them. No sequential scan of users, sessions, audit events, API keys or the other token tables,
and the keyset pages (members, audit log) come out of their index already ordered (no Sort).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.databases import MigratedDatabase, migrated_database
from services.api.api_keys import queries as api_key_queries
from services.api.audit_log import queries as audit_queries
from services.api.me import queries as me_queries
from services.api.members.queries import MEMBERS
from services.api.pagination import encode_cursor
from services.auth.accounts import queries as account_queries
from services.auth.housekeeping import queries as housekeeping_queries
from services.auth.identities import queries as identity_queries
from services.auth.one_time_tokens import queries as token_queries
from services.auth.sessions import queries as session_queries
from services.auth.signups import queries as signup_queries
from shared.db import create_engine, create_sessionmaker, ping, transaction
from shared.sessions import queries as revocation_queries
from shared.settings import load_settings

# Tables that grow with users, sessions and activity: never read by a sequential scan.
BIG_TABLES = {
    "users",
    "sessions",
    "session_retired_tokens",
    "audit_log",
    "api_keys",
    "one_time_tokens",
    "signup_attempts",
}

# Proportions of a large deployment: many orgs, one big tenant holding a fifth of the users and
# half of the audit log. Hashes are deterministic so the test can present them.
DATASET = """
CREATE FUNCTION pg_temp.org(n int) RETURNS uuid LANGUAGE sql IMMUTABLE
AS $$ SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(n), 12, '0'))::uuid $$;

INSERT INTO organizations (id, name)
SELECT pg_temp.org(o), 'Org ' || o
FROM generate_series(1, 2000) o;

INSERT INTO users (id, org_id, email, name, role, password_hash, email_verified_at, created_at)
SELECT ('10000000-0000-0000-0000-' || lpad(to_hex(u), 12, '0'))::uuid,
       pg_temp.org(CASE WHEN u <= 5000 THEN 1 ELSE 2 + u % 1999 END),
       'user' || u || '@example.com', 'User ' || u, CASE WHEN u % 100 = 1 THEN 'owner' ELSE 'member' END,
       'x', now(), now() - make_interval(secs => 25000 - u)
FROM generate_series(1, 25000) u;

INSERT INTO sessions (org_id, user_id, token_hash, previous_token_hash, rotated_at, expires_at, revoked_at)
SELECT u.org_id, u.id, sha256(('s' || n || u.id)::bytea),
       CASE WHEN n = 1 THEN sha256(('p' || u.id)::bytea) END,
       CASE WHEN n = 1 THEN now() END,
       now() + interval '7 days' - make_interval(days => (n = 2 AND u.email LIKE '%77@%')::int * 30),
       NULL
FROM users u, generate_series(1, 2) n;

INSERT INTO session_retired_tokens (token_hash, session_id, org_id)
SELECT sha256(('r' || s.id)::bytea), s.id, s.org_id FROM sessions s WHERE s.previous_token_hash IS NOT NULL;

INSERT INTO audit_log (org_id, action, created_at)
SELECT pg_temp.org(CASE WHEN e % 5 = 0 THEN 1 ELSE 2 + e % 1999 END),
       'user.login', now()
FROM generate_series(1, 100000) e;

INSERT INTO api_keys (org_id, public_id, secret_hash, name, scopes)
SELECT pg_temp.org(1 + k % 2000),
       lpad(to_hex(k), 16, '0'), sha256(('k' || k)::bytea), 'key ' || k, ARRAY['read']
FROM generate_series(1, 5000) k;

INSERT INTO one_time_tokens (org_id, user_id, purpose, token_hash, expires_at)
SELECT u.org_id, u.id, 'magic_link', sha256(('t' || u.id)::bytea), now() + interval '15 minutes'
FROM users u;

INSERT INTO signup_attempts (email, token_hash, password_hash, name, org_name, expires_at)
SELECT 'signup' || a || '@example.com', sha256(('a' || a)::bytea), 'x', 'Name', 'Org',
       now() + interval '1 day'
FROM generate_series(1, 20000) a;

ANALYZE;
"""

BIG_ORG = UUID("00000000-0000-0000-0000-000000000001")
SMALL_ORG = UUID("00000000-0000-0000-0000-000000000002")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@dataclass
class Plans:
    """The plans auto_explain reported, with their statements' text.

    PostgreSQL reports a statement's plan when its executor ends, which for a portal is only at
    the connection's next statement or COMMIT: the plans are read once everything committed.
    """

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def listener(self, _connection: object, message: asyncpg.PostgresLogMessage) -> None:
        text = message.message or ""
        if "plan:" in text:
            plan = json.loads(text.split("plan:", 1)[1])
            self.seen.append((" ".join(plan["Query Text"].split()), plan["Plan"]))


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


@dataclass
class Stack:
    plans: Plans
    api: AsyncEngine
    auth: AsyncEngine


async def _prepare(database: MigratedDatabase) -> None:
    conn = await asyncpg.connect(database.admin_url)
    try:
        await conn.execute(DATASET)
        for role in (database.roles.auth, database.roles.api):
            for setting, value in (
                ("session_preload_libraries", "auto_explain"),
                ("auto_explain.log_min_duration", "0"),
                ("auto_explain.log_nested_statements", "on"),
                ("auto_explain.log_format", "json"),
                ("auto_explain.log_level", "notice"),
                ("client_min_messages", "notice"),
            ):
                await conn.execute(
                    f'ALTER ROLE "{role}" IN DATABASE "{database.name}" SET {setting} = {value!r}'
                )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def plans_database(pg_admin_url: str) -> Iterator[MigratedDatabase]:
    with migrated_database(pg_admin_url, f"plans{secrets.token_hex(4)}") as database:
        yield database


@pytest.fixture
async def stack(plans_database: MigratedDatabase) -> AsyncIterator[Stack]:
    await _prepare_once(plans_database)
    plans = Plans()
    engines = []
    for role, url in (("api", plans_database.api_url), ("auth", plans_database.auth_url)):
        settings = load_settings(
            env="test", service_name=role, database_url=url, redis_url="redis://127.0.0.1:1/0"
        )
        engine = create_engine(settings)

        def on_connect(dbapi_connection: Any, _record: object) -> None:
            dbapi_connection.driver_connection.add_log_listener(plans.listener)

        event.listen(engine.sync_engine, "connect", on_connect)
        engines.append(engine)
    try:
        yield Stack(plans, *engines)
    finally:
        for engine in engines:
            await engine.dispose()


_prepared: set[str] = set()


async def _prepare_once(database: MigratedDatabase) -> None:
    if database.name not in _prepared:
        await _prepare(database)
        _prepared.add(database.name)


def _seq_scans(plans: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [
        f"{node['Relation Name']} in: {query}"
        for query, plan in plans
        for node in nodes(plan)
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES
    ]


def _sorts(plans: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [query for query, plan in plans for node in nodes(plan) if "Sort" in node["Node Type"]]


async def _run_hot_paths(stack: Stack, number: int) -> None:
    """The hot paths' statements, each run for real as its role (writes included); user `number`
    (of a small org) logs in, refreshes and logs out."""
    api_sessions = create_sessionmaker(stack.api)
    auth_sessions = create_sessionmaker(stack.auth)
    member = UUID("10000000-0000-0000-0000-000000000fa0")  # user 4000, of the big org
    other_org_user = UUID(f"10000000-0000-0000-0000-{number:012x}")

    # The api: GET /me with a token, with an API key, a members page, an audit-log page, each
    # deep in its cursor, in the big org and in a small one.
    assert await me_queries.caller(stack.api, BIG_ORG, member) is not None
    found = await api_key_queries.authenticate(stack.api, f"{1000:016x}", _digest("k1000"))
    assert found is not None and found.bound
    for org in (BIG_ORG, SMALL_ORG):
        async with transaction(api_sessions, org) as session:
            first, _ = await MEMBERS.page(session, limit=50, cursor=None)
            middle = first[len(first) // 2]
            await MEMBERS.page(
                session, limit=50, cursor=encode_cursor(middle.created_at.isoformat(), middle.id)
            )
            assert await MEMBERS.get(session, middle.id) is not None
            newest = await audit_queries.list_events(session, limit=51, before=None)
            before = int(newest[-1].id) - 5_000 if org == BIG_ORG else int(newest[len(newest) // 2].id)
            deep = await audit_queries.list_events(session, limit=51, before=before)
            assert deep

    # The auth service: login by email, refresh and logout lookups (cross-tenant), sign-up,
    # one-time tokens.
    async with transaction(auth_sessions) as session:
        user = await identity_queries.user_by_email(session, f"user{number}@example.com")
        assert user is not None and user.id == other_org_user
        await identity_queries.email_taken(session, "user3@example.com")
        family = await session_queries.family_of(session, _digest(f"p{other_org_user}"))
        assert family is not None
        await session_queries.family_of(session, _digest(f"r{family.id}"))
        assert await session_queries.live_by_token(session, _digest(f"p{other_org_user}"), grace_seconds=60)
        assert await token_queries.is_live(
            session, purpose="magic_link", digest=_digest(f"t{other_org_user}")
        )
        await signup_queries.find_live(session, _digest("a123"))
        await signup_queries.copy_newest(
            session, email="signup77@example.com", digest=_digest(f"new{number}"), link_ttl=60, signup_ttl=600
        )
        await signup_queries.purge_expired(session, 100)
    # The refresh of a current token: one statement of its own (it binds the tenant itself).
    rotated = await session_queries.rotate_current(
        auth_sessions,
        _digest(f"s1{other_org_user}"),
        successor_digest=_digest(f"next{number}"),
        sealed=bytes(32),
        ip="203.0.113.7",
    )
    assert rotated is not None
    # Then, bound to the user's org: the refresh under its row lock, the login's checks, logout.
    async with transaction(auth_sessions, user.org_id) as session:
        row = await session_queries.lock_for_refresh(session, user.org_id, family.id, grace_seconds=60)
        assert row is not None
        await account_queries.lock_credentials_version(session, user.id)
        await identity_queries.user_by_id(session, user.id)
        await revocation_queries.lock_live_user_sessions(session, user.id)
        await revocation_queries.mark_revoked(session, [family.id], "logout")
    # Housekeeping: a batch of dead sessions and of spent one-time tokens, across orgs.
    async with transaction(auth_sessions) as session:
        purged = await housekeeping_queries.purge_dead_sessions(session, keep_seconds=0, limit=1000)
        assert purged.sessions > 0
        await housekeeping_queries.purge_spent_tokens(session, keep_seconds=0, limit=100)
    await ping(stack.api)  # the last COMMIT's plan notice is handed over by now


# Statements that must have been planned (so the test cannot pass on plans it never saw).
EXPECTED = (
    "FROM users u JOIN organizations o",  # GET /me
    "FROM api_keys WHERE api_keys.public_id = p_public_id",  # inside api_key_authenticate
    "FROM users WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id",  # members page
    "FROM audit_log WHERE audit_log.id < $1 ORDER BY audit_log.id DESC",  # audit-log page
    "FROM users WHERE lower(email) = $1",  # login by email
    "FROM session_retired_tokens WHERE token_hash = $1",  # refresh: the token's family
    "FOR UPDATE OF s",  # refresh: the session locked
    "UPDATE sessions s SET previous_token_hash",  # refresh: the current token rotated
    "FROM sessions WHERE revoked_at IS NULL AND (token_hash = $1",  # logout
    "FROM signup_attempts WHERE token_hash = $1",  # sign-up
    "FROM sessions s WHERE s.expires_at < cutoff",  # housekeeping: expired sessions
    "FROM sessions s WHERE s.revoked_at < cutoff",  # housekeeping: revoked sessions
    "DELETE FROM session_retired_tokens t WHERE t.session_id = ANY (doomed)",  # housekeeping
    "FROM one_time_tokens t WHERE t.expires_at < cutoff",  # housekeeping: spent tokens
)


async def test_hot_paths_read_the_big_tables_through_indexes(stack: Stack) -> None:
    await _run_hot_paths(stack, 24000)
    seen = stack.plans.seen
    for fragment in EXPECTED:
        assert any(fragment in query for query, _ in seen), f"no plan reported for {fragment!r}"
    scans = [
        f"{node['Relation Name']}: {query}"
        for query, plan in seen
        for node in nodes(plan)
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES
    ]
    assert scans == []


async def test_keyset_pages_read_their_tenant_index_in_order(stack: Stack) -> None:
    """A members or audit-log page reads only its org's rows, through the (org_id, ...) index, in
    page order: never a walk of the whole table's key filtering other orgs out, and, in a big
    org, never a sort of all its rows (the text order of audit ids once did that)."""
    await _run_hot_paths(stack, 24001)
    pages = [
        (query, plan)
        for query, plan in stack.plans.seen
        if ("FROM audit_log" in query or "FROM users" in query) and "ORDER BY" in query and "LIMIT" in query
    ]
    assert len(pages) == 8
    for query, plan in pages:
        scans = [node for node in nodes(plan) if node.get("Relation Name") in ("audit_log", "users")]
        assert len(scans) == 1, query
        bound = scans[0].get("Index Cond") or scans[0].get("Recheck Cond") or ""
        assert bound.lstrip("(").startswith("org_id = "), query
        # Sorting a small org's whole log is cheap; a big org's page must come out of the index.
        sorts = [node for node in nodes(plan) if "Sort" in node["Node Type"]]
        assert not sorts or scans[0]["Plan Rows"] <= 1000, query


async def test_the_refresh_rotation_reads_its_user_by_primary_key(stack: Stack) -> None:
    """The one-statement refresh checks the session's user by its primary key: a join the
    planner could serve from the tenant's org index reads every user of a big org per refresh,
    since the tenant is bound only as the statement runs."""
    await _run_hot_paths(stack, 24002)
    rotations = [
        plan for query, plan in stack.plans.seen if "UPDATE sessions s SET previous_token_hash" in query
    ]
    assert rotations
    for plan in rotations:
        users = [node for node in nodes(plan) if node.get("Relation Name") == "users"]
        assert users
        assert {node.get("Index Name") for node in users} == {"users_pkey"}, users
