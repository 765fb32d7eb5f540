"""Helpers the tests of several areas share (those of one area live in tests/<area>/helpers.py)."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from devstack.ports import wait_for_port
from devstack.processes import start_uvicorn, stop_process


def access_claims(ttl: int = 900, **overrides: Any) -> dict[str, Any]:
    """Claims the api accepts for a fresh user, org and session, valid for `ttl` seconds from now.

    `overrides` replace claims; an override of None leaves that claim out (to test its absence).
    """
    now = int(time.time())
    claims = {
        "iss": "blockbot-auth",
        "aud": "blockbot-api",
        "sub": str(uuid.uuid4()),
        "org": str(uuid.uuid4()),
        "role": "member",
        "sid": str(uuid.uuid4()),
        "jti": secrets.token_hex(8),
        "iat": now,
        "exp": now + ttl,
        **overrides,
    }
    return {name: value for name, value in claims.items() if value is not None}


async def fetch_each(url: str, *statements: tuple[str, tuple[Any, ...]]) -> list[list[asyncpg.Record]]:
    """Run the (sql, arguments) statements in order on one connection to `url`; the rows of each."""
    conn = await asyncpg.connect(url)
    try:
        return [await conn.fetch(sql, *args) for sql, args in statements]
    finally:
        await conn.close()


@contextmanager
def uvicorn_process(app: str, env: Mapping[str, str], port: int, log: Path) -> Iterator[int]:
    """`app` ("services.api.main:app") served by a real uvicorn process on 127.0.0.1:`port`, its
    output appended to `log`; yields its pid once the port answers, and stops it afterwards."""
    process = start_uvicorn(app, port, env, log)
    try:
        wait_for_port(port, timeout=90)
        yield process.pid
    finally:
        stop_process(process, grace=30)
