"""Steps the browser tests share: sign up and verify through the pages, sign in."""

from __future__ import annotations

import secrets

from playwright.sync_api import Page, expect

from tests.e2e.helpers import PASSWORD
from tests.e2e.pages.browser import Outbox

# Someone else's text that would run script if a page inserted it as HTML.
XSS_ORG = "<img src=x onerror=alert(1)>"


def address(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}@example.org"


def sign_up(page: Page, outbox: Outbox, email: str, *, org: str = XSS_ORG, name: str = "Ada") -> str:
    """Fill the sign-up form with the keyboard; return the verification link from the mail."""
    page.goto("/auth/sign-up")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Organization name").fill(org)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    return outbox.link(email, "/auth/verify-email")


def signed_up(page: Page, outbox: Outbox, email: str, *, org: str = XSS_ORG, name: str = "Ada") -> None:
    """A new owner of a new org, verified and signed in, on /account."""
    page.goto(sign_up(page, outbox, email, org=org, name=name))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/account")
    ready(page)


def ready(page: Page) -> None:
    """Wait until a signed-in page has filled in every section."""
    expect(page.locator("body[data-ready=true]")).to_have_count(1)


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/auth/sign-in")
    page.locator("#password-sign-in").get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/account")
    ready(page)


def assert_no_markup_from(page: Page) -> None:
    """The XSS org name rendered nothing: no <img> anywhere on the page."""
    assert page.locator("img").count() == 0
