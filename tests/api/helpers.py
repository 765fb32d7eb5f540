"""Helpers of the api tests: seeded orgs and members, a token minter, the app driven over ASGI,
database snapshots."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt
import orjson
from asyncpg.prepared_stmt import PreparedStatement
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from services.api.app import create_api_app
from shared.access_tokens import b64url_encode, jwk_thumbprint, raw_public_bytes
from shared.redis import create_redis, email_queue_name
from shared.settings import Settings

HIGH = 1_000_000


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    name: str
    role: str


@dataclass
class Org:
    id: uuid.UUID
    name: str
    members: list[Member] = field(default_factory=list)

    def by_role(self, role: str) -> Member:
        return next(m for m in self.members if m.role == role)

    @property
    def owner(self) -> Member:
        return self.by_role("owner")


class Minter:
    """Issues access tokens the way the auth service does (EdDSA, kid = JWK thumbprint)."""

    def __init__(self, settings: Settings, key: Ed25519PrivateKey | None = None) -> None:
        self.settings = settings
        self.key = key or Ed25519PrivateKey.generate()
        self.kid = jwk_thumbprint(self.key.public_key())

    @property
    def public_b64(self) -> str:
        return b64url_encode(raw_public_bytes(self.key.public_key()))

    def token(self, member: Member, **overrides: Any) -> str:
        """A valid token for `member`; an override of None removes that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": str(member.id),
            "org": str(member.org_id),
            "role": member.role,
            "sid": str(uuid.uuid4()),
            "jti": secrets.token_hex(8),
            "iat": now,
            "exp": now + 900,
            # A fresh authentication, as a sign-in gives: step-up routes accept it.
            "auth_time": now,
        }
        claims.update({k: str(v) if isinstance(v, uuid.UUID) else v for k, v in overrides.items()})
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, member: Member, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(member, **overrides)}"}


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Api]:
    """The real app with its lifespan, driven over ASGI."""
    app = create_api_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield Api(app, client, settings)


async def add_member(admin: asyncpg.Connection, org: Org, role: str) -> Member:
    tag = secrets.token_hex(4)
    email, name = f"{role}-{tag}@example.com", f"{role.title()} {tag}"
    user_id = await admin.fetchval(
        "INSERT INTO users (org_id, email, name, role, password_hash, email_verified_at)"
        " VALUES ($1, $2, $3, $4, 'x', now()) RETURNING id",
        org.id,
        email,
        name,
        role,
    )
    member = Member(user_id, org.id, email, name, role)
    org.members.append(member)
    return member


async def add_session(admin: asyncpg.Connection, member: Member) -> uuid.UUID:
    sid: uuid.UUID = await admin.fetchval(
        "INSERT INTO sessions (org_id, user_id, token_hash, expires_at)"
        " VALUES ($1, $2, $3, now() + interval '7 days') RETURNING id",
        member.org_id,
        member.id,
        secrets.token_bytes(32),
    )
    return sid


async def audit_rows(admin: asyncpg.Connection, org: Org) -> list[asyncpg.Record]:
    return await admin.fetch("SELECT * FROM audit_log WHERE org_id = $1 ORDER BY id", org.id)


async def queued_emails(settings: Settings) -> list[dict[str, Any]]:
    """The email jobs waiting on the arq queue (JSON-serialized), as their kwargs."""
    redis = create_redis(settings)
    try:
        ids = await redis.zrange(email_queue_name(settings), 0, -1)
        jobs = []
        for job_id in ids:
            data = await redis.get(b"arq:job:" + job_id)
            if data is not None:
                jobs.append(orjson.loads(data))
        return jobs
    finally:
        await redis.aclose()


async def snapshot(admin: asyncpg.Connection, org: Org) -> dict[str, Any]:
    """Everything of an org, to prove a cross-tenant attempt changed nothing."""
    return {
        "org": await admin.fetch("SELECT * FROM organizations WHERE id = $1", org.id),
        "users": await admin.fetch("SELECT * FROM users WHERE org_id = $1 ORDER BY id", org.id),
        "sessions": await admin.fetch("SELECT * FROM sessions WHERE org_id = $1 ORDER BY id", org.id),
        "invitations": await admin.fetch("SELECT * FROM invitations WHERE org_id = $1 ORDER BY id", org.id),
        "tokens": await admin.fetch("SELECT * FROM one_time_tokens WHERE org_id = $1 ORDER BY id", org.id),
        "audit": await admin.fetch("SELECT * FROM audit_log WHERE org_id = $1 ORDER BY id", org.id),
    }


@contextmanager
def round_trips(*, prepares: bool = True) -> Iterator[list[str]]:
    """Every PostgreSQL round trip asyncpg makes meanwhile: simple queries, prepares (unless
    `prepares=False`), executions of prepared statements and of statements asyncpg prepares and
    caches itself (`Connection.fetch`, shared.db.read_in_one_round_trip)."""
    sent: list[str] = []
    originals = (
        asyncpg.connection.Connection.execute,
        asyncpg.connection.Connection.prepare,
        PreparedStatement.fetch,
        asyncpg.connection.Connection.fetch,
    )

    async def fetch_query(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return await originals[3](self, query, *args, **kwargs)

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query.strip().rstrip(";").upper())
        return await originals[0](self, query, *args, **kwargs)

    async def prepare(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if prepares:
            sent.append("PREPARE " + query)
        return await originals[1](self, query, *args, **kwargs)

    async def fetch(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(self.get_query())
        return await originals[2](self, *args, **kwargs)

    asyncpg.connection.Connection.execute = execute  # type: ignore[method-assign]
    asyncpg.connection.Connection.prepare = prepare  # type: ignore[method-assign]
    PreparedStatement.fetch = fetch  # type: ignore[method-assign]
    asyncpg.connection.Connection.fetch = fetch_query  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        asyncpg.connection.Connection.execute = originals[0]  # type: ignore[method-assign]
        asyncpg.connection.Connection.prepare = originals[1]  # type: ignore[method-assign]
        PreparedStatement.fetch = originals[2]  # type: ignore[method-assign]
        asyncpg.connection.Connection.fetch = originals[3]  # type: ignore[method-assign]


async def walk(client, path, headers, limit):
    """Every item of a paginated list, page by page: (items, number of pages)."""
    items, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
