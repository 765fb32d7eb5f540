"""The public contract as a client through the gateway sees it: accounts, problem bodies, links in
emails, paths the gateway must not serve.

Shared by the local e2e suite (tests/e2e) and the Compose test (tests/compose/accounts.py): both
stacks answer the same contract, so one definition of what a signed-in account is keeps the two
from drifting apart. Only the way to read an email differs (an outbox directory here, `docker
compose exec` there), so `register` is given it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx

from devstack.run import LocalStack

REFRESH_COOKIE = "bb_refresh"
PASSWORD = "correct horse battery staple 42"
PROBLEM = "application/problem+json"

# What the gateway must never serve: the services' operational endpoints, under their own names
# and behind every traversal, encoding and case trick (sent as raw paths, see `get_raw`).
OPERATIONAL_PATHS = (
    "/metrics",
    "/health",
    "/ready",
    "/docs",
    "/openapi.json",
    "/api/v1/../metrics",
    "/api/v1/auth/../../metrics",
    "/api/v1/auth/%2e%2e/%2e%2e/metrics",
    "/api/v1/%2e%2e/metrics",
    "/api/v1/auth/..%2f..%2fmetrics",
    "/api//metrics",
    "/METRICS",
    "/api/v1/metrics",
    "/api/v1/auth/metrics",
)

# The newest email to an address (waiting for it): how `register` reads its verification link.
Mailbox = Callable[[str], dict[str, Any]]


@dataclass
class Account:
    email: str
    access: str
    refresh: str
    user_id: str
    org_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def get_raw(url: str, path: str) -> httpx.Response:
    """GET `path` from `url` byte for byte: httpx would otherwise normalize `..` and encodings
    away, and the gateway would never see the trick."""
    with httpx.Client(timeout=10.0) as http:
        request = http.build_request("GET", url)
        request.url = request.url.copy_with(raw_path=path.encode())
        return http.send(request)


def refresh_cookie(response: httpx.Response) -> str | None:
    """The refresh token the response sets, its cookie checked to be out of scripts' and other
    sites' reach (None when the response sets none)."""
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if REFRESH_COOKIE in jar:
            morsel = jar[REFRESH_COOKIE]
            assert morsel["path"] == "/api/v1/auth"
            assert morsel["httponly"]
            assert morsel["samesite"].lower() == "strict"
            return morsel.value or None
    return None


def link_token(message: dict[str, Any], page: str) -> str:
    match = re.search(re.escape(page) + r"#token=([A-Za-z0-9_\-.~%]+)", message["text"])
    assert match, f"no {page}#token= link in: {message['text']}"
    return match.group(1)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    for key in ("type", "title", "status", "detail", "instance"):
        assert key in body, body
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


def account_from(response: httpx.Response, email: str, status: int = 200) -> Account:
    """The account a token response signs in (login, refresh, verification, magic link: 200;
    accepting an invitation: 201), with its refresh cookie."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    cookie = refresh_cookie(response)
    assert cookie, response.headers
    return Account(
        email=email,
        access=body["access_token"],
        refresh=cookie,
        user_id=str(body["user"]["id"]),
        org_id=str(body["org"]["id"]),
    )


def register(client: httpx.Client, mailbox: Mailbox, label: str) -> Account:
    """Sign up a new owner of a new org, follow the verification link `mailbox` finds, and
    return the signed-in account."""
    email = f"{label}-{secrets.token_hex(4)}@example.org"
    response = client.post(
        "/api/v1/auth/register",
        json={
            "email": email,
            "password": PASSWORD,
            "name": f"{label} owner",
            "org_name": f"{label} Inc",
        },
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "verification_sent"}
    token = link_token(mailbox(email), "/auth/verify-email")
    verified = client.post("/api/v1/auth/email/verify", json={"token": token, "password": PASSWORD})
    return account_from(verified, email)


def wait_for_email(outbox: Path, to: str, subject_hint: str = "", timeout: float = 20.0) -> dict[str, Any]:
    """The newest outbox message to `to` (the worker writes one JSON file per message)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.json"), reverse=True):
            if path.name.startswith("."):
                continue  # the worker's temporary file, renamed into place once complete
            try:
                message: dict[str, Any] = json.loads(path.read_text())
            except FileNotFoundError:
                continue
            recipients = message["to"] if isinstance(message["to"], list) else [message["to"]]
            if to in recipients and subject_hint.lower() in message["subject"].lower():
                return message
        time.sleep(0.1)
    raise AssertionError(f"no email to {to} in {outbox} after {timeout}s: {sorted(outbox.glob('*'))}")


def mailbox(stack: LocalStack) -> Mailbox:
    """How `register` reads the local stack's mail: straight from the worker's outbox directory."""
    return partial(wait_for_email, stack.outbox)
