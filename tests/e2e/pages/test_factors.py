"""Second factors in Chromium: passkeys through Chromium's virtual authenticator (DevTools
protocol), registered on the account page and used passwordless and as a second factor; an
authenticator app enrolled from the key the page shows (codes from pyotp), then a sign-in with
a code; a recovery code that works once; the org's policy; axe and the CSP on the new parts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import PASSWORD
from tests.e2e.pages.browser import Outbox, Tab, axe_source, run_sql
from tests.e2e.pages.flows import AXE_RUN, address, invite, open_org, ready, sign_in, signed_up, tab_to

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def virtual_authenticator(page: Page) -> None:
    """A platform authenticator holding discoverable credentials, verifying its user at once."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )


# Chromium's virtual authenticator answers a conditional (autofill) request at once, where a
# person would pick the passkey from the email field's suggestions. With this flag set, the
# sign-in page sees a browser without autofill passkeys, and shows only its button.
WITHOUT_AUTOFILL = """
if (localStorage.getItem("without-autofill") && window.PublicKeyCredential) {
  PublicKeyCredential.isConditionalMediationAvailable = async () => false;
}
"""


def sign_out(page: Page) -> None:
    page.locator("header").get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/auth/sign-in")


def password_first(page: Page, email: str) -> None:
    """The password on the sign-in page, up to the second-factor step."""
    page.goto("/auth/sign-in")
    page.locator("#password-sign-in").get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()


def on_account(page: Page) -> None:
    page.wait_for_url("**/account")
    ready(page)


def recovery_codes(page: Page) -> list[str]:
    listed = page.locator("#recovery-list")
    expect(listed).to_be_visible()
    codes = listed.inner_text().split()
    assert len(codes) == 10, codes
    return codes


def axe_clean(page: Page, where: str) -> None:
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        violations = page.evaluate(AXE_RUN)
        assert not violations, (where, scheme, json.dumps(violations, indent=1))
    page.emulate_media(color_scheme="light")


def test_passkey_registered_then_passwordless_and_as_second_factor(
    new_tab: Callable[..., Tab], outbox: Outbox, base_url: str
) -> None:
    tab = new_tab()
    tab.context.add_init_script(axe_source())
    tab.context.add_init_script(WITHOUT_AUTOFILL)
    page = tab.new_page()
    virtual_authenticator(page)
    email = address("passkey")
    signed_up(page, outbox, email, org="Keys")

    page.get_by_label("Label for a new passkey").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator("tr[data-passkey]")).to_have_count(1)
    expect(page.locator("tr[data-passkey]")).to_contain_text("Laptop")
    recovery_codes(page)  # the first factor brings the first recovery codes
    expect(page.locator("#recovery-state")).to_contain_text("10 of 10")
    axe_clean(page, "account with a passkey and recovery codes")

    # Passwordless: the passkey alone signs in, from the email field's autofill...
    sign_out(page)
    on_account(page)
    # ...and from the button.
    page.evaluate("localStorage.setItem('without-autofill', '1')")
    sign_out(page)
    page.get_by_role("button", name="Sign in with a passkey").click()
    on_account(page)

    # The password alone no longer does: the passkey finishes it as a second factor.
    sign_out(page)
    password_first(page, email)
    axe_clean(page, "second-factor step")
    page.get_by_role("button", name="Use a passkey").click()
    on_account(page)
    expect(page.locator("tr[data-passkey]")).to_contain_text("Laptop")

    # An emailed link is a first factor too: the passkey finishes it.
    sign_out(page)
    seen = outbox.count(email)
    page.locator("#magic-link").get_by_label("Email for a sign-in link").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.goto(outbox.link(email, "/auth/magic", seen=seen))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Use a passkey").click()
    on_account(page)

    # So is an external provider's sign-in, which lands on /auth/second-factor#challenge=…
    # (its challenge taken here from a password sign-in: the same kind of challenge).
    with httpx.Client(base_url=base_url, timeout=30) as client:
        first = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert first.status_code == 401 and first.json()["second_factor_required"], first.text
    sign_out(page)
    page.goto(f"/auth/second-factor#challenge={first.json()['challenge']}")
    assert "#" not in page.url  # the challenge leaves the address bar first
    page.get_by_role("button", name="Use a passkey").click()
    on_account(page)

    # Removed, the passkey no longer asks for anything after the password.
    page.get_by_role("button", name="Remove the passkey Laptop").click()
    expect(page.locator("tr[data-passkey]")).to_have_count(0)
    sign_out(page)
    page.locator("#password-sign-in").get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    on_account(page)


def test_authenticator_app_then_a_code_and_a_recovery_code_once(
    new_tab: Callable[..., Tab], outbox: Outbox
) -> None:
    tab = new_tab()
    tab.context.add_init_script(axe_source())
    page = tab.new_page()
    email = address("totp")
    signed_up(page, outbox, email, org="Codes")

    # With the keyboard: Tab to the button, Enter.
    tab_to(page, "#totp-start")
    page.keyboard.press("Enter")
    expect(page.locator("#totp-qr svg")).to_have_count(1)  # the QR code, drawn inline
    expect(page.locator("#totp-secret")).not_to_be_empty()
    secret = page.locator("#totp-secret").inner_text()
    expect(page.get_by_label("Code from the app")).to_be_focused()
    axe_clean(page, "authenticator app enrolment")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    codes = recovery_codes(page)
    expect(page.locator("#totp-state")).to_contain_text("On")

    # With the keyboard alone: the step focuses the code field, Enter sends it. The code of the
    # next 30-second step (inside the accepted skew): the current one was spent enabling.
    sign_out(page)
    password_first(page, email)
    expect(page.get_by_label("Code from your authenticator app")).to_be_focused()
    page.keyboard.type(totp.at(int(time.time()) + 30))
    page.keyboard.press("Enter")
    on_account(page)

    # A recovery code works once.
    sign_out(page)
    password_first(page, email)
    page.get_by_role("button", name="Use a recovery code instead").click()
    expect(page.get_by_label("Recovery code")).to_be_focused()
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Use this recovery code").click()
    on_account(page)
    expect(page.locator("#recovery-state")).to_contain_text("9 of 10")

    sign_out(page)
    password_first(page, email)
    page.get_by_role("button", name="Use a recovery code instead").click()
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Use this recovery code").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    page.get_by_label("Recovery code").fill(codes[1])
    page.get_by_role("button", name="Use this recovery code").click()
    on_account(page)


def test_the_org_policy_sends_members_to_enrol(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    owner = new_tab().new_page()
    email = address("policy")
    signed_up(owner, outbox, email, org="Strict")
    owner.get_by_role("button", name="Set up an authenticator app").click()
    expect(owner.locator("#totp-secret")).not_to_be_empty()
    totp = pyotp.TOTP(owner.locator("#totp-secret").inner_text())
    owner.get_by_label("Code from the app").fill(totp.now())
    owner.get_by_role("button", name="Turn on").click()
    recovery_codes(owner)

    # The policy needs the owner's own second factor in this session: sign in with it.
    sign_out(owner)
    password_first(owner, email)
    owner.get_by_label("Code from your authenticator app").fill(totp.at(int(time.time()) + 30))
    owner.get_by_role("button", name="Continue").click()
    on_account(owner)
    open_org(owner)
    owner.get_by_label("Require a second factor of every member").check()
    owner.get_by_role("button", name="Save policy").click()
    expect(owner.locator("#second-factor-policy").get_by_role("status")).to_have_text("Policy saved.")
    owner.reload()
    ready(owner)
    expect(owner.get_by_label("Require a second factor of every member")).to_be_checked()

    # A new member signs in and is sent to set one up.
    link = invite(owner, outbox, address("member"))
    newcomer = new_tab().new_page()
    newcomer.goto(link)
    newcomer.get_by_label("Your name").fill("Grace")
    newcomer.get_by_label("Password").fill(PASSWORD)
    newcomer.get_by_label("Password").press("Enter")
    newcomer.wait_for_url("**/account?enrol=second-factor#second-factors")
    ready(newcomer)
    expect(newcomer.locator("#second-factor-required")).to_be_visible()


def test_a_change_needing_a_recent_sign_in_asks_for_it_then_goes_on(
    new_tab: Callable[..., Tab], outbox: Outbox, admin_url: str
) -> None:
    tab = new_tab()
    tab.context.add_init_script(axe_source())
    page = tab.new_page()
    email = address("stepup")
    signed_up(page, outbox, email, org="Later")
    # The sign-in was an hour ago, as far as step-up is concerned.
    run_sql(
        admin_url,
        "UPDATE sessions SET auth_time = now() - interval '1 hour'"
        " WHERE user_id = (SELECT id FROM users WHERE email = $1)",
        email,
    )
    page.reload()
    ready(page)

    page.get_by_role("button", name="Set up an authenticator app").click()
    dialog = page.get_by_role("dialog", name="Confirm it is you")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Your password")).to_be_focused()
    axe_clean(page, "step-up dialog")
    dialog.get_by_label("Your password").fill("not my password at all")
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog.get_by_role("alert")).to_be_visible()
    dialog.get_by_label("Your password").fill(PASSWORD)
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog).to_have_count(0)
    # The change went on once proven: the enrolment is shown.
    expect(page.locator("#totp-qr svg")).to_have_count(1)

    # Cancelled, a change stays undone and says why.
    run_sql(
        admin_url,
        "UPDATE sessions SET auth_time = now() - interval '1 hour'"
        " WHERE user_id = (SELECT id FROM users WHERE email = $1)",
        email,
    )
    page.reload()
    ready(page)
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("#second-factors p.error")).not_to_be_empty()
    expect(page.locator("#totp-enrol")).to_be_hidden()


def test_password_changed_on_the_account_page(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    page = new_tab().new_page()
    email = address("change")
    signed_up(page, outbox, email, org="Words")
    other = new_tab().new_page()
    sign_in(other, email)

    form = page.locator("#password-change")
    form.get_by_label("Current password").fill("not my password at all")
    form.get_by_label("New password").fill("a brand new password 7")
    form.get_by_role("button", name="Change password").click()
    current = form.get_by_label("Current password")
    expect(current).to_have_attribute("aria-invalid", "true")
    error = page.locator("#password-change-current_password-error")
    expect(error).to_contain_text("not your current password")

    current.fill(PASSWORD)
    form.get_by_label("New password").fill("a brand new password 7")
    form.get_by_role("button", name="Change password").click()
    expect(form.get_by_role("status")).to_contain_text("Password changed")
    # The other session ends; this one goes on, and the new password signs in.
    other.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(other.get_by_role("heading", name="You have been signed out")).to_be_visible()
    sign_out(page)
    sign_in(page, email, "a brand new password 7")
    assert any(m.get("subject", "").endswith("password was changed") for m in outbox.messages(email))


QR_CODE = """
async (markup) => {
  const { qrCode } = await import("/pages/js/sections/factors.js");
  const node = qrCode(markup);
  return node === null ? null : node.outerHTML;
}
"""


def test_the_qr_code_is_shown_only_when_it_is_a_drawing(new_tab: Callable[..., Tab]) -> None:
    """The QR code's SVG is inserted into the page: anything but a drawing is refused."""
    tab = new_tab()
    page = tab.new_page()
    page.goto("/auth/sign-in")
    drawing = '<svg width="8" height="8" class="segno"><title>t</title><path d="M0 0h1" stroke="#000"/></svg>'
    shown = page.evaluate(QR_CODE, drawing)
    assert shown and shown.startswith("<svg") and 'role="img"' in shown
    for hostile in (
        '<svg width="8"><script>window.ran = 1</script></svg>',
        '<svg width="8"><foreignObject><img src="x"></foreignObject></svg>',
        '<svg width="8" onload="window.ran = 1"><path d="M0 0"/></svg>',
        '<svg width="8"><a href="javascript:alert(1)"><path d="M0 0"/></a></svg>',
        '<svg width="8"><path d="M0 0" style="fill:red"/></svg>',
        '<svg width="8"></svg><img src="x">',
        "<p>not a drawing</p>",
    ):
        assert page.evaluate(QR_CODE, hostile) is None, hostile
    assert page.evaluate("window.ran === undefined")
    # The parsed (inert) document shares the page's policy, which refused the handler and the
    # style attribute while parsing: reported, as expected here.
    assert all("inline" in text for text in tab.watch.csp_violations), tab.watch.csp_violations
    tab.watch.console_errors.clear()


def test_step_up_with_an_authenticator_code_then_the_app_removed(
    new_tab: Callable[..., Tab], outbox: Outbox, admin_url: str
) -> None:
    page = new_tab().new_page()
    email = address("stepcode")
    signed_up(page, outbox, email, org="Later")
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.locator("#totp-secret")).not_to_be_empty()
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    recovery_codes(page)
    run_sql(
        admin_url,
        "UPDATE sessions SET auth_time = now() - interval '1 hour'"
        " WHERE user_id = (SELECT id FROM users WHERE email = $1)",
        email,
    )
    page.reload()
    ready(page)

    page.get_by_role("button", name="Remove the authenticator app").click()
    dialog = page.get_by_role("dialog", name="Confirm it is you")
    dialog.get_by_role("button", name="Use an authenticator code instead").click()
    code = dialog.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    code.fill(totp.at(int(time.time()) + 30))  # the current step was spent turning it on
    code.press("Enter")
    expect(dialog).to_have_count(0)
    expect(page.locator("#totp-state")).to_have_text("Off.")
    expect(page.get_by_role("button", name="Set up an authenticator app")).to_be_visible()
