"""Accounts made through the gateway, with their emails read from the compose stack's outbox.

The contract's own helpers (Account, assert_problem, ...) are the local e2e suite's,
tests/e2e/helpers.py, imported from there: both stacks answer the same contract. Here is only
what differs on Compose: how mail is read, and the production profile's Secure cookie."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx

from tests.compose.stack import ComposeStack
from tests.e2e import helpers
from tests.e2e.helpers import PASSWORD, REFRESH_COOKIE, Account, account_from

__all__ = ["SECURE_REFRESH_COOKIE", "login", "refresh_cookie", "register"]


SECURE_REFRESH_COOKIE = "__Secure-" + REFRESH_COOKIE  # the name whenever the cookie is Secure


def refresh_cookie(response: httpx.Response, name: str = REFRESH_COOKIE) -> SimpleCookie:
    """The refresh cookie `name` the response sets (empty jar when none): the whole jar, as the
    Secure flag and its `__Secure-` name (production profile) are checked here too."""
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar
    return SimpleCookie()


def register(client: httpx.Client, stack: ComposeStack, label: str) -> Account:
    """Sign up, follow the verification link from the outbox, return the signed-in account."""
    return helpers.register(client, lambda to: stack.wait_for_email(to, "/auth/verify-email"), label)


def login(client: httpx.Client, email: str) -> Account:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    return account_from(response, email)
