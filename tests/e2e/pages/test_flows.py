"""Every flow of the account pages, end to end in Chromium through Traefik, mail from the outbox."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.e2e.helpers import PASSWORD
from tests.e2e.pages.browser import Outbox
from tests.e2e.pages.conftest import Tab

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


def test_sign_up_then_verify_with_a_wrong_then_the_right_password(
    new_tab: Callable[..., Tab], outbox: Outbox
) -> None:
    page = new_tab().new_page()
    email = address("verify")
    link = sign_up(page, outbox, email)

    page.goto(link)
    # The token leaves the address bar (and history) before anything is sent.
    assert "#" not in page.url and page.url.endswith("/auth/verify-email")
    page.get_by_label("Password").fill("not the sign-up password")
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("password is not the one chosen at sign-up")
    expect(page.get_by_role("button", name="Send a new link")).to_be_visible()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/account")
    expect(page.get_by_label("Name")).to_have_value("Ada")
    # The org name (someone's text) is shown as text, never as markup.
    expect(page.locator("#org-name")).to_have_text(XSS_ORG)
    assert page.locator("img").count() == 0


def test_validation_errors_beside_their_field(new_tab: Callable[..., Tab]) -> None:
    page = new_tab().new_page()
    page.goto("/auth/sign-up")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("Organization name").fill("Engines")
    page.get_by_label("Email").fill(address("short"))
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    error = page.locator("#password-error")
    expect(error).to_contain_text("10 characters")
    assert password.get_attribute("aria-describedby") == "password-error"
    expect(page.get_by_label("Email")).not_to_have_attribute("aria-invalid", "true")


def test_sign_in_account_sessions_and_sign_out(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    page = new_tab().new_page()
    email = address("account")
    page.goto(sign_up(page, outbox, email, org="Engines"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/account")

    # Rename, then sign out and back in with the password.
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status")).to_have_text("Name saved.")
    rows = page.locator("tr[data-session]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("This session")

    page.get_by_role("button", name="Sign out", exact=True).first.click()
    page.wait_for_url("**/auth/sign-in")
    page.goto("/account")
    page.wait_for_url("**/auth/sign-in?next=%2Faccount")

    page.get_by_label("Email", exact=True).fill(email)  # the password form
    page.get_by_label("Password").fill("wrong password entirely")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/account")
    expect(page.get_by_label("Name")).to_have_value("Ada Lovelace")
