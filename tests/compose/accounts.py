"""Accounts made through the gateway, with their emails read from the compose stack's outbox
(the contract's helpers are the local e2e suite's, tests/e2e/test_stack.py)."""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie

import httpx

from tests.compose.conftest import ComposeStack
from tests.e2e.test_stack import PASSWORD, PROBLEM, REFRESH_COOKIE, Account, assert_problem, link_token

__all__ = [
    "PASSWORD",
    "PROBLEM",
    "REFRESH_COOKIE",
    "Account",
    "account_from",
    "assert_problem",
    "link_token",
    "login",
    "refresh_cookie",
    "register",
]


def refresh_cookie(response: httpx.Response) -> SimpleCookie:
    """The refresh cookie the response sets (empty jar when none)."""
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if REFRESH_COOKIE in jar:
            return jar
    return SimpleCookie()


def account_from(response: httpx.Response, email: str) -> Account:
    assert response.status_code in (200, 201), response.text
    body = response.json()
    cookie = refresh_cookie(response)[REFRESH_COOKIE].value
    return Account(
        email=email,
        access=body["access_token"],
        refresh=cookie,
        user_id=str(body["user"]["id"]),
        org_id=str(body["org"]["id"]),
    )


def register(client: httpx.Client, stack: ComposeStack, label: str) -> Account:
    """Sign up, follow the verification link from the outbox, return the signed-in account."""
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
    token = link_token(stack.wait_for_email(email, "/auth/verify-email"), "/auth/verify-email")
    return account_from(
        client.post("/api/v1/auth/email/verify", json={"token": token, "password": PASSWORD}), email
    )


def login(client: httpx.Client, email: str) -> Account:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    return account_from(response, email)
