"""Signing up, in, linking and unlinking with an external provider, in Chromium through Traefik,
against npm's certified `oidc-provider` and its development login and consent screens.

A stack of this module's own: AUTH_PROVIDERS must name the provider at start, and the provider's
client must know the stack's callback URL, so the provider starts first on the ports the stack
will take. The other page tests keep their stack without providers.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from devstack.run import DATABASE_NAME, LocalStack, Ports
from tests.auth.providers.helpers import OpenIdProvider, run_openid_provider
from tests.e2e.helpers import PASSWORD, REFRESH_COOKIE, link_token, refresh_cookie, register
from tests.e2e.pages.browser import Outbox, Tab, axe_source, run_sql
from tests.e2e.pages.flows import (
    AXE_RUN,
    NARROW,
    TRANSFERRED,
    WEIGHT_LIMIT,
    address,
    ready,
    signed_up,
    tab_to,
)
from tests.e2e.processes import running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


NAME = "Test OP"
CONTINUE = f"Continue with {NAME}"
# Every reason the callback may put in the fragment (its docstring, docs/api.md), with words of
# the message the person reads instead.
REASONS = {
    "state_missing": "did not bring back what it was given",
    "state_mismatch": "started in another browser or window",
    "expired": "This sign-in attempt has expired",
    "denied": f"You did not allow {NAME} to share your details",
    "provider_error": f"{NAME} could not finish the sign-in",
    "provider_unavailable": f"{NAME} cannot be reached",
    "issuer_mismatch": f"The answer from {NAME} could not be verified",
    "invalid_id_token": f"The answer from {NAME} could not be verified",
    "invalid_response": f"The answer from {NAME} could not be verified",
    "email_unverified": "Your email address is not verified",
    "account_exists": f"then link {NAME} from your account page",
    "invitation_invalid": "This invitation no longer works",
    "invitation_email_mismatch": "not the one the invitation was sent to",
    "sign_in_refused": "This account cannot sign in",
    "session_ended": "Your session ended before linking finished",
    "identity_linked_elsewhere": "already linked to another BlockBot account",
    "provider_already_linked": f"Your account already has a {NAME} account linked",
    "<b>made-up</b>": "This sign-in could not be finished",
}


@pytest.fixture(scope="module")
def provider_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, OpenIdProvider]]:
    ports = Ports.free()
    callback = f"http://localhost:{ports.http}/api/v1/auth/providers/op/callback"
    log = tmp_path_factory.mktemp("op") / "oidc-provider.log"
    with run_openid_provider(log, callback) as provider:
        configured = [
            {
                "id": "op",
                "name": NAME,
                "issuer": provider.issuer,
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
            }
        ]
        with running_stack({"AUTH_PROVIDERS": json.dumps(configured)}, ports) as stack:
            yield stack, provider


# The page fixtures (tests/e2e/pages/conftest.py) on this module's stack.
@pytest.fixture(scope="module")
def base_url(provider_stack: tuple[LocalStack, OpenIdProvider]) -> str:
    return f"http://localhost:{provider_stack[0].ports.http}"


@pytest.fixture(scope="module")
def outbox(provider_stack: tuple[LocalStack, OpenIdProvider]) -> Outbox:
    return Outbox(provider_stack[0].outbox)


@pytest.fixture(scope="module")
def admin_url(provider_stack: tuple[LocalStack, OpenIdProvider]) -> str:
    return f"postgresql://postgres@127.0.0.1:{provider_stack[0].ports.postgres}/{DATABASE_NAME}"


@pytest.fixture(scope="module")
def op(provider_stack: tuple[LocalStack, OpenIdProvider]) -> OpenIdProvider:
    return provider_stack[1]


@pytest.fixture(scope="module")
def owner(base_url: str, outbox: Outbox) -> str:
    """A verified owner with a password: their address."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        return register(client, newest(outbox), "op-owner").email


def newest(outbox: Outbox) -> Callable[[str], dict[str, Any]]:
    """The newest mail to an address, waited for."""

    def read(to: str) -> dict[str, Any]:
        for _ in range(600):
            if found := outbox.messages(to):
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no mail to {to}")

    return read


def signed_in_tab(new_tab: Callable[..., Tab], base_url: str, email: str, **options: Any) -> Page:
    """A page of a new context signed in as `email` (a session of its own, from a password login)."""
    page = tab(new_tab, **options)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    cookie = refresh_cookie(login)
    assert cookie, login.text
    page.context.add_cookies(
        [
            {
                "name": REFRESH_COOKIE,
                "value": cookie,
                "domain": "localhost",
                "path": "/api/v1/auth",
                "httpOnly": True,
            }
        ]
    )
    return page


def provider_account(op: OpenIdProvider, email: str, *, verified: bool = True) -> str:
    """A login at the provider whose claims carry `email`: its login name."""
    login = f"acct-{secrets.token_hex(4)}"
    response = httpx.post(
        f"{op.issuer}/__test/accounts",
        json={"id": login, "email": email, "email_verified": verified, "name": "Grace Hopper"},
        timeout=30,
    )
    assert response.status_code == 204, response.text
    return login


def tab(new_tab: Callable[..., Tab], **options: Any) -> Page:
    """A page of a new browser context; the provider's screens ask for a web font from Google,
    which never leaves this machine."""
    opened = new_tab(**options)
    opened.context.route("https://fonts.googleapis.com/**", lambda route: route.abort())
    return opened.new_page()


def through_provider(
    page: Page, base_url: str, login: str, start: Callable[[], None], *, deny: bool = False
) -> None:
    """`start()` sends the browser to the provider; there, log in as `login` and consent (or
    cancel with `deny`), as far as it asks (a session and a grant it already has skip its
    screens); back at BlockBot afterwards."""
    with page.expect_navigation():
        start()
    for _ in range(4):
        if page.url.startswith(base_url):
            return
        with page.expect_navigation():
            if deny:
                page.get_by_role("link", name="[ Cancel ]").click()
            elif page.locator("input[name=login]").count():
                page.locator("input[name=login]").fill(login)
                page.locator("input[name=password]").fill("any password")
                page.get_by_role("button", name="Sign-in").click()
            else:
                page.get_by_role("button", name="Continue").click()
    raise AssertionError(f"still at the provider: {page.url}")


def continue_with_keyboard(page: Page, role: str = "link") -> Callable[[], None]:
    """Tab to "Continue with …" and press Enter (the keyboard alone)."""

    def press() -> None:
        expect(page.get_by_role(role, name=CONTINUE)).to_be_visible()  # type: ignore[arg-type]
        tab_to(page, ".provider")
        assert page.evaluate("document.activeElement.textContent") == CONTINUE
        page.keyboard.press("Enter")

    return press


def header_email(page: Page) -> Any:
    return page.locator("header nav .muted")


def signed_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url("**/auth/sign-in")


def test_sign_up_with_the_provider_then_sign_in_again(
    new_tab: Callable[..., Tab], base_url: str, op: OpenIdProvider
) -> None:
    email = address("op-signup")
    login = provider_account(op, email)
    page = tab(new_tab)
    page.goto("/auth/sign-up")
    through_provider(page, base_url, login, continue_with_keyboard(page))
    page.wait_for_url("**/account")
    ready(page)
    expect(header_email(page)).to_contain_text(email)
    row = page.locator("#identities tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(NAME)
    expect(row).to_contain_text(email)

    signed_out(page)
    through_provider(page, base_url, login, continue_with_keyboard(page))
    page.wait_for_url("**/account")
    ready(page)
    expect(header_email(page)).to_contain_text(email)


def test_unlinking_the_last_way_to_sign_in_is_refused(
    new_tab: Callable[..., Tab], base_url: str, op: OpenIdProvider
) -> None:
    email = address("op-only")
    login = provider_account(op, email)
    page = tab(new_tab)
    page.goto("/auth/sign-in")
    through_provider(page, base_url, login, continue_with_keyboard(page))
    page.wait_for_url("**/account")
    ready(page)
    page.get_by_role("button", name=f"Unlink {NAME} ({email})").click()
    expect(page.locator("#identities")).to_contain_text("This is the only way left to sign in")
    page.reload()
    ready(page)
    expect(page.locator("#identities tbody tr")).to_have_count(1)


def test_an_address_with_an_account_gets_a_clear_page_and_no_session(
    new_tab: Callable[..., Tab], base_url: str, op: OpenIdProvider, outbox: Outbox
) -> None:
    email = address("op-exists")
    owner = tab(new_tab)
    signed_up(owner, outbox, email)

    login = provider_account(op, email)
    page = tab(new_tab)
    page.goto("/auth/sign-in")
    through_provider(page, base_url, login, continue_with_keyboard(page))
    page.wait_for_url("**/auth/sign-in")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You already have an account")
    expect(alert).to_contain_text(f"sign in the usual way (password or emailed link), then link {NAME}")
    assert "#" not in page.url and "account_exists" not in page.content()
    # No session: the account page sends this browser to sign in.
    page.goto("/account")
    page.wait_for_url("**/auth/sign-in?next=%2Faccount")


def test_link_from_the_account_page_after_confirming_the_password_then_sign_in_with_it(
    new_tab: Callable[..., Tab], base_url: str, op: OpenIdProvider, outbox: Outbox, admin_url: str
) -> None:
    email = address("op-link")
    page = tab(new_tab)
    signed_up(page, outbox, email)
    # The sign-in is now an hour old: linking asks to confirm it is you.
    run_sql(
        admin_url,
        "UPDATE sessions SET auth_time = auth_time - interval '1 hour' "
        "WHERE user_id = (SELECT id FROM users WHERE email = $1)",
        email,
    )
    section = page.locator("#identities")
    expect(section.get_by_text("None linked yet.")).to_be_visible()
    section.get_by_role("button", name=f"Link {NAME}", exact=True).click()
    dialog = page.get_by_role("dialog", name="Confirm it is you")
    expect(dialog.get_by_label("Your password")).to_be_focused()
    dialog.get_by_label("Your password").fill("not my password")
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog.get_by_role("alert")).to_be_visible()
    dialog.get_by_label("Your password").fill(PASSWORD)
    # Another address at the provider: linking never depends on the email.
    login = provider_account(op, address("op-elsewhere"))
    through_provider(page, base_url, login, dialog.get_by_role("button", name="Confirm").click)
    page.wait_for_url("**/account")
    ready(page)
    assert "#" not in page.url
    expect(page.get_by_role("status").filter(has_text=f"{NAME} is linked")).to_be_visible()
    expect(section.locator("tbody tr")).to_have_count(1)
    expect(section.get_by_role("button", name=f"Link {NAME}", exact=True)).to_have_count(0)

    signed_out(page)
    through_provider(page, base_url, login, continue_with_keyboard(page))
    page.wait_for_url("**/account")
    ready(page)
    expect(header_email(page)).to_contain_text(email)
    # A password remains: unlinking is allowed.
    section.get_by_role("button", name=f"Unlink {NAME}", exact=False).click()
    expect(section.get_by_text("None linked yet.")).to_be_visible()


def test_denied_consent_ends_on_a_clear_page(
    new_tab: Callable[..., Tab], base_url: str, op: OpenIdProvider
) -> None:
    login = provider_account(op, address("op-deny"))
    page = tab(new_tab)
    page.goto("/auth/sign-in")
    through_provider(page, base_url, login, continue_with_keyboard(page), deny=True)
    page.wait_for_url("**/auth/sign-in")
    expect(page.get_by_role("alert")).to_contain_text("Sign-in cancelled")
    expect(page.get_by_role("alert")).to_contain_text(f"You did not allow {NAME}")
    assert "#" not in page.url
    page.goto("/account")
    page.wait_for_url("**/auth/sign-in?next=%2Faccount")


def test_an_invitation_accepted_with_the_provider(
    new_tab: Callable[..., Tab], base_url: str, op: OpenIdProvider, outbox: Outbox
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        inviter = register(client, newest(outbox), "op-inviter")
        invitee = address("op-invitee")
        invited = client.post("/api/v1/invitations", json={"email": invitee}, headers=inviter.auth)
        assert invited.status_code == 201, invited.text
    token = link_token(newest(outbox)(invitee), "/auth/accept-invitation")
    login = provider_account(op, invitee)
    page = tab(new_tab)
    page.goto(f"/auth/accept-invitation#token={token}")
    through_provider(page, base_url, login, continue_with_keyboard(page, "button"))
    page.wait_for_url("**/account")
    ready(page)
    expect(header_email(page)).to_contain_text(invitee)
    expect(page.locator("#org-name")).to_have_text("op-inviter Inc")


def test_every_callback_error_shows_a_message_never_the_reason(
    new_tab: Callable[..., Tab], base_url: str, owner: str
) -> None:
    page = tab(new_tab)
    for reason, words in REASONS.items():
        page.goto("about:blank")
        page.goto(f"/auth/sign-in#error={reason}&provider=op")
        alert = page.locator("#provider-outcome")
        expect(alert).to_contain_text(words)
        text = alert.inner_text()
        assert "_" not in text and "<" not in text and "made-up" not in text, (reason, text)
        assert "#" not in page.url
    # A provider the stack does not know is never named by the fragment's text.
    page.goto("about:blank")
    page.goto("/auth/sign-in#error=denied&provider=Evil%20Corp")
    expect(page.locator("#provider-outcome")).to_contain_text("the sign-in provider")
    expect(page.locator("#provider-outcome")).not_to_contain_text("Evil")

    # A link's failure lands on the account page, in the providers' section.
    account = signed_in_tab(new_tab, base_url, owner)
    account.goto("/account#error=identity_linked_elsewhere&provider=op")
    ready(account)
    outcome = account.locator("#identities #provider-outcome")
    expect(outcome).to_have_attribute("role", "alert")
    expect(outcome).to_contain_text(f"This {NAME} account is already linked to another BlockBot account")
    assert "#" not in account.url


def test_buttons_keep_the_pages_accessible_and_light(
    browser: Browser, new_tab: Callable[..., Tab], base_url: str, owner: str
) -> None:
    """axe-core in both color schemes, the weight limit and no horizontal scrolling at 360 px on
    every page with the buttons or a provider's outcome; the tabs' CSP watch sees no violation."""
    pages = {
        "sign-in": "/auth/sign-in",
        "sign-in with an error": "/auth/sign-in#error=account_exists&provider=op",
        "sign-up": "/auth/sign-up",
        "accept-invitation": "/auth/accept-invitation#token=not-a-real-token",
        "account": "/account",
        "account linked": "/account#linked=op",
    }
    found: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    too_wide: dict[str, int] = {}
    for scheme in ("light", "dark"):
        for name, path in pages.items():
            signed_in = name.startswith("account")
            page = (
                signed_in_tab(new_tab, base_url, owner, color_scheme=scheme, viewport=NARROW)
                if signed_in
                else tab(new_tab, color_scheme=scheme, viewport=NARROW)
            )
            page.context.add_init_script(axe_source())
            page.context.new_cdp_session(page).send("Network.clearBrowserCache")
            page.goto(path)
            if signed_in:
                ready(page)
            page.wait_for_load_state("networkidle")
            if name.startswith("sign") or name == "accept-invitation":
                expect(
                    page.get_by_role("link", name=CONTINUE).or_(page.get_by_role("button", name=CONTINUE))
                ).to_be_visible()
            if violations := page.evaluate(AXE_RUN):
                found[f"{name} ({scheme})"] = violations
            if scheme == "light":
                entries = [(n, size) for n, size in page.evaluate(TRANSFERRED) if "axe" not in n]
                sizes[name] = sum(size for _, size in entries)
                if (width := page.evaluate("document.documentElement.scrollWidth")) > NARROW["width"]:
                    too_wide[name] = width
    print("\ntransferred per page with providers (bytes):", json.dumps(sizes))
    assert not found, json.dumps(found, indent=1)
    assert max(sizes.values()) < WEIGHT_LIMIT, sizes
    assert not too_wide, too_wide
