"""Sign-up, verification, sign-in and the account page, end to end in Chromium through
Traefik, the mail read from the outbox."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import PASSWORD
from tests.e2e.pages.browser import Outbox, Tab
from tests.e2e.pages.flows import XSS_ORG, address, assert_no_markup_from, ready, sign_in, sign_up, signed_up

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


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
    ready(page)
    expect(page.get_by_label("Name")).to_have_value("Ada")
    # The org name (someone's text) is shown as text, never as markup.
    expect(page.locator("#org-name")).to_have_text(XSS_ORG)
    assert_no_markup_from(page)


def test_no_provider_buttons_when_none_are_configured(new_tab: Callable[..., Tab]) -> None:
    page = new_tab().new_page()
    for path in ("/auth/sign-in", "/auth/sign-up", "/auth/accept-invitation#token=not-a-real-token"):
        with page.expect_response("**/api/v1/auth/providers") as listed:
            page.goto(path)
        assert listed.value.json() == {"items": []}
        expect(page.locator("#providers")).to_be_hidden()
        expect(page.get_by_text("Continue with")).to_have_count(0)


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
    expect(page.locator("#sign-up-password-error")).to_contain_text("10 characters")
    assert password.get_attribute("aria-describedby") == "sign-up-password-error"
    expect(page.get_by_label("Email")).not_to_have_attribute("aria-invalid", "true")
    expect(password).to_be_focused()


def test_sign_in_account_rename_sessions_and_sign_out(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    page = new_tab().new_page()
    email = address("account")
    signed_up(page, outbox, email, org="Engines")

    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status")).to_have_text("Name saved.")
    rows = page.locator("tr[data-session]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("This session")
    # No provider configured (AUTH_PROVIDERS empty) and none linked: no providers' section.
    expect(page.locator("#identities")).to_be_hidden()

    page.get_by_role("button", name="Sign out", exact=True).first.click()
    page.wait_for_url("**/auth/sign-in")
    page.goto("/account")
    page.wait_for_url("**/auth/sign-in?next=%2Faccount")

    page.locator("#password-sign-in").get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("wrong password entirely")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    sign_in(page, email)
    expect(page.get_by_label("Name")).to_have_value("Ada Lovelace")


def test_a_revoked_session_is_signed_out_in_its_own_tab(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    laptop = new_tab().new_page()
    email = address("revoke")
    signed_up(laptop, outbox, email)
    phone = new_tab().new_page()
    sign_in(phone, email)

    laptop.reload()
    ready(laptop)
    rows = laptop.locator("tr[data-session]")
    expect(rows).to_have_count(2)
    other = laptop.locator("tr[data-current=false]")
    other.get_by_role("button").click()
    expect(rows).to_have_count(1)

    # The phone's tab notices when it is looked at again (or on its next request).
    phone.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(phone.get_by_role("heading", name="You have been signed out")).to_be_visible()
    phone.get_by_role("link", name="Sign in").click()
    phone.wait_for_url("**/auth/sign-in?next=%2Faccount")

    # Sign out everywhere ends the laptop's own session too.
    laptop.get_by_role("button", name="Sign out everywhere").click()
    laptop.wait_for_url("**/auth/sign-in")
    laptop.goto("/account")
    laptop.wait_for_url("**/auth/sign-in?next=%2Faccount")


def test_rate_limit_shows_the_wait(new_tab: Callable[..., Tab], outbox: Outbox, base_url: str) -> None:
    page = new_tab().new_page()
    email = address("limited")
    signed_up(page, outbox, email, org="Engines")
    page.get_by_role("button", name="Sign out", exact=True).first.click()
    page.wait_for_url("**/auth/sign-in")
    # Wrong passwords for this address until its window is full (10 an hour by default).
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(30):
            answer = client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password 1"})
            if answer.status_code == 429:
                break
        assert answer.status_code == 429, answer.text
    page.locator("#password-sign-in").get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Too many attempts. Try again in")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_disabled()
