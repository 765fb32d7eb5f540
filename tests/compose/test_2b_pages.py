"""Part 2b: the account pages in real Chromium through the Compose stack's gateway.

The smaller browser set of issue 23 (tests/e2e/pages has every flow against `make run`): a
person signs up on /auth/sign-up, opens the emailed verification link (read from the stack's
outbox), enters the password, lands signed in on /account and opens /org. No CSP violation,
uncaught error or dialog on the way; axe-core finds nothing serious or critical on /account;
the org's hostile name shows as text. Chromium and axe-core are found, and a missing one
reported, as in tests/e2e/pages (a failure under CI or REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.compose.stack import HTTP_PORT, ComposeStack
from tests.compose.timings import part_timer
from tests.e2e.helpers import PASSWORD
from tests.e2e.pages.browser import CHROMIUM_ARGS, TOKEN_LINK, Tab, axe_source, chromium_path
from tests.e2e.pages.flows import XSS_ORG, address, assert_no_markup_from, ready
from tests.e2e.pages.test_quality import AXE_RUN

pytestmark = [pytest.mark.compose, pytest.mark.slow]
_part = part_timer("part 2b: account pages in Chromium through Traefik")

# APP_BASE_URL's origin (tests/compose/conftest.py): the one the emailed links name and the
# only one whose browser requests the refresh endpoints accept.
BASE_URL = f"http://localhost:{HTTP_PORT}"


@pytest.fixture(scope="module")
def browser(stack: ComposeStack) -> Iterator[Browser]:
    """Debian's chromium (skipped, or failed where required, before the driver starts); the
    stack up, also when this module runs alone (`up --wait` leaves a running stack as it is)."""
    executable = chromium_path()
    stack.up()
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_sign_up_verify_account_and_org_in_chromium(browser: Browser, stack: ComposeStack) -> None:
    axe = axe_source()
    tab = Tab(browser, BASE_URL)
    try:
        tab.context.add_init_script(axe)
        page = tab.new_page()
        email = address("browser")
        page.goto("/auth/sign-up")
        page.get_by_label("Your name").fill("Ada")
        page.get_by_label("Organization name").fill(XSS_ORG)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

        mailed = stack.wait_for_email(email, "/auth/verify-email")["text"]
        link = re.search(TOKEN_LINK.format(page=re.escape("/auth/verify-email")), mailed)
        assert link and link.group(1).startswith(BASE_URL + "/"), mailed
        page.goto(link.group(1))
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        page.wait_for_url(BASE_URL + "/account")
        ready(page)
        expect(page.locator("#org-name")).to_have_text(XSS_ORG)
        assert_no_markup_from(page)
        violations = page.evaluate(AXE_RUN)
        assert not violations, json.dumps(violations, indent=1)

        page.get_by_role("link", name="Organization").click()
        page.wait_for_url(BASE_URL + "/org")
        ready(page)
        expect(page.locator("#org-name")).to_have_text(XSS_ORG)
        expect(page.locator("#members")).to_contain_text(email)  # the owner among the members
        assert_no_markup_from(page)
    finally:
        tab.close()
    tab.assert_clean()
