"""Helpers of the second-factor tests: enrolment and sign-in over HTTP, claims, audit peeks."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import httpx
import jwt
import pyotp

from tests.auth.factors.authenticator import SoftAuthenticator
from tests.auth.helpers import PREFIX, admin

STEP = 30


def claims_of(access_token: str) -> dict[str, Any]:
    """The claims of an access token (its signature is the services' business, not this peek's)."""
    claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return claims


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(int(time.time()) + offset_steps * STEP)


async def enrol_totp(client: httpx.AsyncClient, token: str, offset_steps: int = 0) -> tuple[str, list[str]]:
    """Enrol and enable TOTP for the token's user; (secret, recovery codes)."""
    started = await client.post(f"{PREFIX}/factors/totp", headers=auth_header(token))
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    enabled = await client.post(
        f"{PREFIX}/factors/totp/enable",
        json={"code": code_at(secret, offset_steps)},
        headers=auth_header(token),
    )
    assert enabled.status_code == 200, enabled.text
    return secret, enabled.json()["recovery_codes"]


async def enrol_passkey(
    client: httpx.AsyncClient,
    token: str,
    authenticator: SoftAuthenticator,
    *,
    fmt: str = "none",
    name: str = "Key",
) -> httpx.Response:
    options = await client.post(f"{PREFIX}/factors/passkeys/options", headers=auth_header(token))
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.json(), fmt=fmt)
    return await client.post(
        f"{PREFIX}/factors/passkeys",
        json={"name": name, "credential": credential},
        headers=auth_header(token),
    )


async def second_factor(client: httpx.AsyncClient, challenge: str, **proof: Any) -> httpx.Response:
    return await client.post(f"{PREFIX}/second-factor", json={"challenge": challenge, **proof})


def challenge_of(response: httpx.Response) -> dict[str, Any]:
    """The sign-in challenge of a first factor's answer (asserting it is one, without tokens)."""
    assert response.status_code == 401, response.text
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/second-factor-challenge")
    assert body["second_factor_required"] is True
    assert "access_token" not in body
    assert not response.headers.get_list("set-cookie")
    return body


async def audit_actions(dsn: str, user_id: str) -> list[str]:
    async with admin(dsn) as conn:
        rows = await conn.fetch("SELECT action FROM audit_log WHERE actor_user_id = $1 ORDER BY id", user_id)
    return [row["action"] for row in rows]


async def audit_details(conn: asyncpg.Connection, user_id: str, action: str) -> list[dict[str, Any]]:
    import json

    rows = await conn.fetch(
        "SELECT details FROM audit_log WHERE actor_user_id = $1 AND action = $2 ORDER BY id", user_id, action
    )
    return [json.loads(row["details"]) if isinstance(row["details"], str) else row["details"] for row in rows]
