"""/org in Chromium: members and roles, invitations (a new person, an address that already
has an account, a revoked one), API keys shown once and copied, the audit log page by page;
the org's name, `<img src=x onerror=alert(1)>`, shown as text on every page that shows it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import PASSWORD
from tests.e2e.pages.browser import Outbox, Tab
from tests.e2e.pages.flows import XSS_ORG, address, assert_no_markup_from, invite, open_org, ready, signed_up

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_members_invitations_and_the_org_name_as_text(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    owner = new_tab().new_page()
    signed_up(owner, outbox, address("owner"))
    open_org(owner)
    expect(owner.locator("#org-name")).to_have_text(XSS_ORG)
    expect(owner.get_by_label("Organization name")).to_have_value(XSS_ORG)
    assert_no_markup_from(owner)

    # A new person accepts: their account page shows the org's name as text too.
    newcomer_email = address("newcomer")
    link = invite(owner, outbox, newcomer_email)
    newcomer = new_tab().new_page()
    newcomer.goto(link)
    assert "#" not in newcomer.url
    newcomer.get_by_label("Your name").fill("Grace")
    newcomer.get_by_label("Password").fill(PASSWORD)
    newcomer.get_by_label("Password").press("Enter")
    newcomer.wait_for_url("**/account")
    ready(newcomer)
    expect(newcomer.locator("#org-name")).to_have_text(XSS_ORG)
    assert_no_markup_from(newcomer)
    # A member has no organization page.
    expect(newcomer.get_by_role("link", name="Organization")).to_have_count(0)
    newcomer.goto("/org")
    refused = newcomer.get_by_role("heading", name="Only owners and admins manage the organization")
    expect(refused).to_be_visible()

    # The owner sees the member, makes them an admin; the invitation is accepted.
    owner.reload()
    ready(owner)
    member = owner.locator("#members tr", has_text=newcomer_email)
    expect(member).to_contain_text("Grace")
    with owner.expect_response(lambda response: response.request.method == "PATCH") as changed:
        member.get_by_label("Role of Grace").select_option("admin")
    assert changed.value.status == 200
    owner.reload()
    ready(owner)
    role = owner.locator("#members tr", has_text=newcomer_email).get_by_label("Role of Grace")
    expect(role).to_have_value("admin")
    expect(owner.locator("#invitations tr", has_text=newcomer_email)).to_contain_text("accepted")

    # An invitation revoked before it is used.
    revoked_email = address("revoked")
    invite(owner, outbox, revoked_email)
    row = owner.locator("#invitations tr", has_text=revoked_email)
    row.get_by_role("button", name="Revoke").click()
    expect(owner.locator("#invitations tr", has_text=revoked_email)).to_contain_text("revoked")


def test_an_invitation_to_an_address_that_has_an_account(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    someone = new_tab().new_page()
    existing = address("existing")
    signed_up(someone, outbox, existing, org="Elsewhere")

    owner = new_tab().new_page()
    signed_up(owner, outbox, address("inviter"))
    open_org(owner)
    link = invite(owner, outbox, existing)

    invited = new_tab().new_page()
    invited.goto(link)
    invited.get_by_label("Your name").fill("Someone")
    invited.get_by_label("Password").fill(PASSWORD)
    invited.get_by_role("button", name="Accept and sign in").click()
    expect(invited.get_by_role("heading", name="You already have an account")).to_be_visible()
    invited.get_by_role("link", name="Sign in").click()
    invited.wait_for_url("**/auth/sign-in")


def test_api_keys_shown_once_copied_and_revoked(
    new_tab: Callable[..., Tab], outbox: Outbox, base_url: str
) -> None:
    tab = new_tab(permissions=["clipboard-read", "clipboard-write"])
    page = tab.new_page()
    signed_up(page, outbox, address("keys"))
    open_org(page)

    form = page.locator("#key-form")
    form.get_by_label("Key name").fill("deploy bot")
    form.get_by_label("write").check()
    form.get_by_label("Expires on").fill("2999-12-31")
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-value")
    expect(secret).to_contain_text("bb_")
    key = secret.inner_text()
    expect(page.get_by_role("button", name="Copy key")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#copy-state")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == key

    row = page.locator("#api-keys tr", has_text="deploy bot")
    expect(row).to_contain_text("read, write")
    expect(row).to_contain_text("expires")
    # The key works, until it is revoked; the list never shows it again.
    with httpx.Client(base_url=base_url, timeout=30) as client:
        assert client.get("/api/v1/org", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        page.reload()
        ready(page)
        assert key not in page.content()
        page.locator("#api-keys tr", has_text="deploy bot").get_by_role("button", name="Revoke").click()
        expect(page.locator("#api-keys tr", has_text="deploy bot")).to_contain_text("revoked")
        assert client.get("/api/v1/org", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_audit_log_pages(new_tab: Callable[..., Tab], outbox: Outbox, base_url: str) -> None:
    page = new_tab().new_page()
    email = address("audit")
    signed_up(page, outbox, email, org="Engines")
    # More events than one page holds (20): renames through the API.
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for number in range(22):
            renamed = client.patch("/api/v1/org", json={"name": f"Engines {number}"}, headers=headers)
            assert renamed.status_code == 200
    open_org(page)
    rows = page.locator("#audit-log tbody tr")
    expect(rows).to_have_count(20)
    page.get_by_role("button", name="Older events").click()
    expect(rows).not_to_have_count(20)
    assert rows.count() > 20
    expect(page.locator("#audit-log")).to_contain_text("org.updated")
