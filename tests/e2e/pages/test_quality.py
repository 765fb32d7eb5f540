"""Every page: no serious or critical axe-core violation in either color scheme, under 50 KB
transferred in all, no horizontal scrolling at 360 px, completable with the keyboard alone.

`UPDATE_SCREENSHOTS=1` also saves the main pages to docs/screenshots/ (shown in the README).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devstack.paths import ROOT
from devstack.run import LocalStack
from tests.e2e.helpers import PASSWORD, REFRESH_COOKIE, refresh_cookie
from tests.e2e.pages.browser import REPORT_VIOLATIONS, SCREENSHOTS, Outbox, Tab, axe_source
from tests.e2e.pages.flows import (
    AXE_RUN,
    TRANSFERRED,
    WEIGHT_LIMIT,
    address,
    ready,
    signed_up,
    tab_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


# Each page as it first shows (the link pages with a token in their fragment).
PAGES = {
    "sign-up": "/auth/sign-up",
    "sign-in": "/auth/sign-in",
    "forgot-password": "/auth/forgot-password",
    "verify-email": "/auth/verify-email#token=not-a-real-token",
    "magic": "/auth/magic#token=not-a-real-token",
    "reset-password": "/auth/reset-password#token=not-a-real-token",
    "accept-invitation": "/auth/accept-invitation#token=not-a-real-token",
    "second-factor": "/auth/second-factor#challenge=not-a-real-challenge",
    "account": "/account",
    "org": "/org",
}
SIGNED_IN = {"account", "org"}
SCREENSHOT_PAGES = ("sign-in", "sign-up", "account", "org", "magic")


@pytest.fixture(scope="module")
def owner(browser: Browser, base_url: str, outbox: Outbox) -> str:
    """A signed-up owner whose org has the hostile name: their address."""
    context = browser.new_context(base_url=base_url)
    email = address("quality")
    signed_up(context.new_page(), outbox, email)
    context.close()
    return email


def context_for(browser: Browser, base_url: str, owner: str | None, **options: Any) -> BrowserContext:
    """A context signed in as `owner` with a session of its own (contexts sharing one refresh
    token would be reuse, which revokes it); None: signed out."""
    context = browser.new_context(base_url=base_url, **options)
    context.add_init_script(REPORT_VIOLATIONS)
    if owner is None:
        return context
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"email": owner, "password": PASSWORD})
    cookie = refresh_cookie(login)
    assert cookie, login.text
    context.add_cookies(
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
    return context


def open_page(context: BrowserContext, name: str) -> Page:
    page = context.new_page()
    page.goto(PAGES[name])
    if name in SIGNED_IN:
        ready(page)
    else:
        page.wait_for_load_state("networkidle")
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violation(browser: Browser, base_url: str, owner: str, scheme: str) -> None:
    contexts = {
        signed_in: context_for(browser, base_url, owner if signed_in else None, color_scheme=scheme)
        for signed_in in (False, True)
    }
    for context in contexts.values():
        context.add_init_script(axe_source())
    found: dict[str, Any] = {}
    try:
        for name in PAGES:
            page = open_page(contexts[name in SIGNED_IN], name)
            assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is (scheme == "dark")
            if violations := page.evaluate(AXE_RUN):
                found[name] = violations
            if name == "sign-up":
                # and with errors beside the fields
                page.get_by_role("button", name="Sign up").click()
                expect(page.locator(".error").first).to_be_visible()
                if violations := page.evaluate(AXE_RUN):
                    found["sign-up with errors"] = violations
            if os.environ.get("UPDATE_SCREENSHOTS") and name in (
                "sign-in",
                "sign-up",
                "account",
                "org",
                "magic",
            ):
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{scheme}.png"), full_page=True)
            page.close()
    finally:
        for context in contexts.values():
            context.close()
    assert not found, json.dumps(found, indent=1)


def test_each_page_under_50_kb_and_no_wider_than_360_px(browser: Browser, base_url: str, owner: str) -> None:
    sizes: dict[str, int] = {}
    too_wide: dict[str, int] = {}
    contexts = {
        signed_in: context_for(
            browser, base_url, owner if signed_in else None, viewport={"width": 360, "height": 740}
        )
        for signed_in in (False, True)
    }
    try:
        for name in PAGES:
            context = contexts[name in SIGNED_IN]
            page = context.new_page()
            # An empty cache for every page: everything it needs is transferred.
            context.new_cdp_session(page).send("Network.clearBrowserCache")
            page.close()
            page = open_page(context, name)
            entries = page.evaluate(TRANSFERRED)
            assert all(size > 0 for _, size in entries), entries  # same origin: sizes are known
            sizes[name] = sum(size for _, size in entries)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 360:
                too_wide[name] = width
            page.close()
    finally:
        for context in contexts.values():
            context.close()
    print("\ntransferred per page (bytes):", json.dumps(sizes))
    assert max(sizes.values()) < WEIGHT_LIMIT, sizes
    assert not too_wide, too_wide


def test_sign_up_to_account_with_the_keyboard_alone(new_tab: Callable[..., Tab], outbox: Outbox) -> None:
    page = new_tab().new_page()
    email = address("keyboard")
    page.goto("/auth/sign-up")
    for selector, text in (
        ("#name", "Kay"),
        ("#org_name", "Keys"),
        ("#email", email),
        ("#password", PASSWORD),
    ):
        tab_to(page, selector)
        page.keyboard.type(text)
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Check your email")).to_be_focused()
    page.goto(outbox.link(email, "/auth/verify-email"))
    tab_to(page, "#password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/account")
    ready(page)
    tab_to(page, "#profile-name")
    page.keyboard.press("Control+A")
    page.keyboard.type("Kay Keys")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Name saved.")
    tab_to(page, "header button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/auth/sign-in")


def test_screenshots_are_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    for name in ("sign-in-light", "account-light", "org-dark"):
        assert f"docs/screenshots/{name}.png" in readme
        assert (SCREENSHOTS / f"{name}.png").exists()


def test_the_readme_in_the_browser_path(new_tab: Callable[..., Tab], stack: LocalStack) -> None:
    """README's "In the browser" steps, as written: its labels and buttons, and the link read
    with the command it shows."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### In the browser", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"`(\.venv/bin/python -m devstack\.outbox [^`]*)`", section)
    assert command, section
    steps = ("/auth/sign-up", "**Sign up**", "**Verify and sign in**", "/account", "**Organization**", "/org")
    for words in steps:
        assert words in section, words
    page = new_tab().new_page()
    email = address("readme")
    page.goto("/auth/sign-up")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("Organization name").fill("Engines")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    argv = shlex.split(command.group(1).replace("$EMAIL", email).replace("ada@example.com", email))
    link = subprocess.run(
        [sys.executable, *argv[1:]],
        env={**os.environ, "DEVSTACK_ROOT": str(stack.root)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert link.startswith(f"http://localhost:{stack.ports.http}/auth/verify-email#token="), link
    page.goto(link)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Verify and sign in").click()
    page.wait_for_url("**/account")
    ready(page)
    page.get_by_role("link", name="Organization").click()
    page.wait_for_url("**/org")
    ready(page)


def test_the_csp_watch_sees_a_violation(new_tab: Callable[..., Tab]) -> None:
    """What every flow's tabs are checked for (conftest `tabs`): an inline script, as an
    injected one would be, is refused by the pages' policy and reported."""
    opened = new_tab()
    page = opened.new_page()
    page.goto("/auth/sign-in")
    with page.expect_console_message(lambda message: "CSP violation" in message.text):
        page.evaluate(
            """() => {
              const script = document.createElement("script");
              script.textContent = "window.injected = true";
              document.body.append(script);
            }"""
        )
    assert page.evaluate("window.injected === undefined")
    assert opened.watch.csp_violations, opened.watch.console_errors
    opened.watch.console_errors.clear()  # expected here: the tab is otherwise clean
