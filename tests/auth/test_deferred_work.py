"""Per-address work happens after the answer is sent (security review finding 3).

Timing itself is measured by bench/auth_timing.py (no timed assertions here); this proves the
mechanism: when the 202 (or a failed login's 401) leaves the app, nothing that depends on
whether the address has an account has been done yet, and it is done right after.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest

from tests.auth.helpers import PREFIX, AuthApp, admin, new_email, queued_emails, signup


async def _post(auth: AuthApp, path: str, body: dict[str, Any], probe: Any) -> tuple[int, Any]:
    """POST through the raw ASGI interface; `probe()` is awaited when the response body is sent."""
    payload = orjson.dumps(body)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{PREFIX}{path}",
        "raw_path": f"{PREFIX}{path}".encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("198.51.100.240", 4000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
    }
    sent = False
    status = 0
    seen: Any = None

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status, seen
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            seen = await probe()

    await auth.app(scope, receive, send)
    return status, seen


@pytest.mark.parametrize(
    ("path", "template"), [("/magic-link", "magic_link"), ("/password/forgot", "password_reset")]
)
async def test_mails_for_a_known_address_are_queued_after_the_answer(
    auth: AuthApp, client: Any, path: str, template: str
) -> None:
    email, _ = await signup(client, auth.settings)

    async def mails() -> int:
        return len([e for e in await queued_emails(auth.settings, email) if e["template"] == template])

    status, at_answer = await _post(auth, path, {"email": email}, mails)
    assert status == 202
    assert at_answer == 0
    assert await mails() == 1


async def test_a_sign_up_attempt_is_recorded_after_the_answer(auth: AuthApp, admin_dsn: str) -> None:
    email = new_email()

    async def attempts() -> int:
        async with admin(admin_dsn) as conn:
            count: int = await conn.fetchval("SELECT count(*) FROM signup_attempts WHERE email = $1", email)
        return count

    body = {"email": email, "password": "a good long password", "name": "N", "org_name": "O"}
    status, at_answer = await _post(auth, "/register", body, attempts)
    assert status == 202
    assert at_answer == 0
    assert await attempts() == 1
