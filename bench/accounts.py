"""Verified accounts for the benchmarks, made through the real sign-up flow over HTTP.

The verification link is read back from the email job the auth service queued in Redis (the
benchmarks run no worker), then `/email/verify` is called with the sign-up's password.
"""

from __future__ import annotations

import re
import time
from typing import cast

import httpx
import orjson
import redis

QUEUE = "queue:email"


def verification_token(redis_url: str, key_prefix: str, email: str) -> str:
    """The token of the newest verification email queued for `email`."""
    client = redis.Redis.from_url(redis_url)
    try:
        found: list[tuple[int, str]] = []
        # redis-py's sync client is typed as possibly async; these calls are synchronous.
        for job_id in cast(list[bytes], client.zrange(key_prefix + QUEUE, 0, -1)):
            data = cast(bytes | None, client.get(b"arq:job:" + job_id))
            if data is None:
                continue
            job = orjson.loads(data)
            kwargs = job["k"]
            if kwargs["to"] == email and kwargs["template"] == "verify_email":
                found.append((job["et"], kwargs["context"]["link"]))
    finally:
        client.close()
    if not found:
        raise RuntimeError(f"no verification email queued for {email}")
    match = re.search(r"#token=([A-Za-z0-9_-]+)$", max(found)[1])
    assert match is not None
    return match.group(1)


def create_verified_account(
    client: httpx.Client, redis_url: str, key_prefix: str, email: str, password: str
) -> None:
    """Register `email` and verify it (the auth service must run with generous limits)."""
    body = {"email": email, "password": password, "name": "Bench", "org_name": "Bench"}
    registered = client.post("/api/v1/auth/register", json=body)
    assert registered.status_code == 202, registered.text
    # The mail is queued right after the 202 (auth's after-response work): wait for it.
    deadline = time.monotonic() + 30
    while True:
        try:
            token = verification_token(redis_url, key_prefix, email)
            break
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    verified = client.post("/api/v1/auth/email/verify", json={"token": token, "password": password})
    assert verified.status_code == 200, verified.text
