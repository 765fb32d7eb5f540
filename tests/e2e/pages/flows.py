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


def open_org(page: Page) -> None:
    page.get_by_role("link", name="Organization").click()
    page.wait_for_url("**/org")
    ready(page)


def invite(page: Page, outbox: Outbox, email: str, role: str = "member") -> str:
    seen = outbox.count(email)
    form = page.locator("#invite-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Role").select_option(role)
    form.get_by_role("button", name="Send invitation").click()
    expect(form.get_by_role("status")).to_have_text(f"Invitation sent to {email}.")
    return outbox.link(email, "/auth/accept-invitation", seen=seen)


WEIGHT_LIMIT = 50 * 1024


NARROW = {"width": 360, "height": 740}


AXE_RUN = """
async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
}
"""


TRANSFERRED = """
() => {
  const entries = performance.getEntriesByType("navigation");
  return [...entries, ...performance.getEntriesByType("resource")].map((e) => [e.name, e.transferSize]);
}
"""


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until `selector` has the focus (as a keyboard user would)."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement?.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")
