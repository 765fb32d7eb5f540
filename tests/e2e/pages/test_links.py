"""The emailed links' pages: a magic link opened twice, forgot and reset password, an expired
link, and links without a token."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import PASSWORD
from tests.e2e.pages.browser import Outbox, Tab, run_sql
from tests.e2e.pages.flows import address, sign_in, signed_up

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


NEW_PASSWORD = "a brand new password 77"


def sign_out(page: object) -> None:
    page.get_by_role("button", name="Sign out", exact=True).first.click()  # type: ignore[attr-defined]
    page.wait_for_url("**/auth/sign-in")  # type: ignore[attr-defined]


def test_magic_link_signs_in_once_and_opening_consumes_nothing(
    new_tab: Callable[..., Tab], outbox: Outbox
) -> None:
    page = new_tab().new_page()
    email = address("magic")
    signed_up(page, outbox, email, org="Engines")
    sign_out(page)

    seen = outbox.count(email)
    page.get_by_label("Email for a sign-in link").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = outbox.link(email, "/auth/magic", seen=seen)

    # Opened (as a mail scanner would), then opened again: nothing consumed yet.
    scanner = new_tab().new_page()
    scanner.goto(link)
    expect(scanner.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(link)
    assert "#" not in page.url
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/account")

    # The second press (the scanner's tab) finds the link used: a clear page, a next step.
    scanner.get_by_role("button", name="Sign in").click()
    expect(scanner.get_by_role("heading", name="This link no longer works")).to_be_visible()
    scanner.get_by_role("link", name="Email me a new link").click()
    scanner.wait_for_url("**/auth/sign-in")


def test_forgot_and_reset_password(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    page = new_tab().new_page()
    email = address("reset")
    signed_up(page, outbox, email, org="Engines")
    sign_out(page)

    seen = outbox.count(email)
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Email").press("Enter")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.goto(outbox.link(email, "/auth/reset-password", seen=seen))
    assert "#" not in page.url
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("New password").press("Enter")
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    sign_in(page, email, NEW_PASSWORD)


def test_an_expired_link_is_a_clear_page(new_tab: Callable[..., Tab], outbox: Outbox, admin_url: str) -> None:
    page = new_tab().new_page()
    email = address("expired")
    signed_up(page, outbox, email, org="Engines")

    # From the account page: "email me a password link" sends the reset mail.
    seen = outbox.count(email)
    page.get_by_role("button", name="Email me a password link").click()
    expect(page.locator("#password .notice")).to_contain_text(email)
    link = outbox.link(email, "/auth/reset-password", seen=seen)
    expired = run_sql(
        admin_url,
        "UPDATE one_time_tokens SET expires_at = now() - interval '1 minute' WHERE purpose = 'password_reset'"
        " AND consumed_at IS NULL AND user_id = (SELECT id FROM users WHERE lower(email) = $1)",
        email,
    )
    assert expired == "UPDATE 1"

    page.goto(link)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    expect(page.get_by_text("has expired or has already been used")).to_be_visible()
    page.get_by_role("link", name="Email me a new link").click()
    page.wait_for_url("**/auth/forgot-password")
    # The old password still works (on another device): nothing was changed.
    sign_in(new_tab().new_page(), email, PASSWORD)


def test_link_pages_without_a_token_say_what_to_do(new_tab: Callable[..., Tab]) -> None:
    page = new_tab().new_page()
    for path, heading in (
        ("/auth/verify-email", "Open the link from your email"),
        ("/auth/magic", "Open the link from your email"),
        ("/auth/reset-password", "This link no longer works"),
        ("/auth/accept-invitation", "This link no longer works"),
    ):
        page.goto(path)
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
