"""Helpers of the auth tests: sign-up, login, refresh and token helpers over HTTP, and
mailbox and database peeks."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
from fastapi import FastAPI

from services.auth.app import create_auth_app
from services.auth.keys import KeyRing, parse_private_key, signing_key
from services.auth.state import AuthState
from shared.redis import create_redis, email_queue_name
from shared.settings import Settings

PREFIX = "/api/v1/auth"


PASSWORD = "correct horse battery"


# One signing key for every app of the run, so tokens of one app verify in another.
KEYRING = KeyRing((signing_key(parse_private_key("nWGxne_9WQeh4yQO2fGBgK0h6jR0JvV4z5_Xp3G1o6s")),))


GENEROUS = {
    "ratelimit_auth_ip_per_minute": 1_000_000,
    "ratelimit_auth_email_per_hour": 1_000_000,
    "ratelimit_auth_refresh_ip_per_minute": 1_000_000,
    "ratelimit_auth_mails_per_address_per_hour": 1_000_000,
    "ratelimit_auth_mails_per_address_network_per_hour": 1_000_000,
}


@dataclass
class AuthApp:
    app: FastAPI
    settings: Settings

    @property
    def state(self) -> AuthState:
        state: AuthState = self.app.state.auth
        return state

    def client(self, ip: str = "198.51.100.7") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def auth_starter(
    make_settings: Callable[..., Settings],
) -> Callable[..., AbstractAsyncContextManager[AuthApp]]:
    """What the `start_auth` fixtures (tests/auth, tests/ops) give: `async with start(**overrides)
    as auth:` runs a real auth app with its lifespan, GENEROUS limits and the run's KEYRING unless
    overridden."""

    @asynccontextmanager
    async def start(keyring: KeyRing | None = KEYRING, **overrides: Any) -> AsyncIterator[AuthApp]:
        settings = make_settings("auth", **{**GENEROUS, **overrides})
        app = create_auth_app(settings, keyring=keyring)
        async with app.router.lifespan_context(app):
            yield AuthApp(app, settings)

    return start


@asynccontextmanager
async def admin(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection (bypasses RLS) for arranging and inspecting test state."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def queued_emails(settings: Settings, to: str) -> list[dict[str, Any]]:
    """The email jobs queued for `to`, oldest first, read from the real arq queue in Redis."""
    redis = create_redis(settings)
    try:
        job_ids = await redis.zrange(email_queue_name(settings), 0, -1)
        found: list[tuple[int, dict[str, Any]]] = []
        for job_id in job_ids:
            data = await redis.get(b"arq:job:" + job_id)
            if data is None:
                continue
            job = orjson.loads(data)
            kwargs = job["k"]
            if kwargs["to"] == to:
                found.append((job["et"], kwargs))
    finally:
        await redis.aclose()
    return [kwargs for _, kwargs in sorted(found, key=lambda item: item[0])]


def token_of(link: str) -> str:
    match = re.search(r"#token=([A-Za-z0-9_-]+)$", link)
    assert match, link
    return match.group(1)


async def last_token(settings: Settings, to: str, template: str) -> str:
    emails = [e for e in await queued_emails(settings, to) if e["template"] == template]
    assert emails, f"no {template} email for {to}"
    return token_of(emails[-1]["context"]["link"])


def refresh_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "bb_refresh":
            return rest.split(";", 1)[0]
    raise AssertionError("no refresh cookie")


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(
        f"{PREFIX}/register",
        json={"email": email, "password": password, "name": "Ada", "org_name": "Acme"},
    )


async def signup(
    client: httpx.AsyncClient, settings: Settings, email: str | None = None, password: str = PASSWORD
) -> tuple[str, httpx.Response]:
    """Register and verify; returns the address and the verification (login) response."""
    address = email or new_email()
    response = await register(client, address, password)
    assert response.status_code == 202, response.text
    token = await last_token(settings, address, "verify_email")
    verified = await verify_email(client, token, password)
    assert verified.status_code == 200, verified.text
    return address, verified


async def signed_in(client: httpx.AsyncClient, settings: Settings) -> tuple[httpx.Response, str]:
    """A new user signed up and verified: their token response and refresh token."""
    _, verified = await signup(client, settings)
    return verified, refresh_cookie(verified)


async def verify_email(client: httpx.AsyncClient, token: str, password: str = PASSWORD) -> httpx.Response:
    """Verify a sign-up attempt: its link's token with the password chosen in it."""
    return await client.post(f"{PREFIX}/email/verify", json={"token": token, "password": password})


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(f"{PREFIX}/login", json={"email": email, "password": password})


async def do_refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    client.cookies.clear()
    return await client.post(f"{PREFIX}/refresh", headers={"Cookie": f"bb_refresh={token}"})


def bearer(response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def comparable(response: httpx.Response) -> tuple[int, dict[str, Any] | None]:
    """Status and body without the per-request id."""
    if not response.content:
        return response.status_code, None
    body = dict(response.json())
    body.pop("request_id", None)
    return response.status_code, body


async def invite(dsn: str, inviter: httpx.Response, email: str, role: str = "member") -> tuple[str, str]:
    """Arrange a pending invitation from the user of `inviter` (a token response) as the api
    would; returns the invitation token and the invitation id."""
    from shared.opaque_tokens import new_token

    token, digest = new_token()
    org_id = inviter.json()["org"]["id"]
    async with admin(dsn) as conn:
        invitation_id = await conn.fetchval(
            "INSERT INTO invitations (org_id, email, role, invited_by, expires_at)"
            " VALUES ($1, $2, $3, $4, now() + interval '1 day') RETURNING id",
            org_id,
            email,
            role,
            inviter.json()["user"]["id"],
        )
        await conn.execute(
            "INSERT INTO one_time_tokens (org_id, invitation_id, purpose, token_hash, expires_at)"
            " VALUES ($1, $2, 'invitation', $3, now() + interval '1 day')",
            org_id,
            invitation_id,
            digest,
        )
    return token, str(invitation_id)


async def clear_of_minute_boundary(settings: Settings, margin_ms: int = 5_000) -> None:
    """Wait, if need be, until Redis' clock is at least `margin_ms` before a minute boundary.

    The limiter's one-minute windows are fixed buckets weighted into a sliding estimate, so the
    answer depends on where the requests fall: a test that must see all its requests in one
    bucket starts early enough in the minute.
    """
    redis = create_redis(settings)
    try:
        seconds, micros = await redis.time()
    finally:
        await redis.aclose()
    elapsed_ms = (seconds * 1000 + micros // 1000) % 60_000
    if elapsed_ms > 60_000 - margin_ms:
        await asyncio.sleep((60_000 - elapsed_ms) / 1000 + 0.05)
