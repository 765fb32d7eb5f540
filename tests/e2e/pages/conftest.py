"""The account pages in Chromium against the e2e stack (tests/e2e/conftest.py), through Traefik.

Pages are opened at `http://localhost:<port>`: APP_BASE_URL's origin, the only one whose
browser requests the refresh endpoints accept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from devstack.run import DATABASE_NAME, LocalStack
from tests.e2e.pages.browser import REPORT_VIOLATIONS, Outbox, Watch, chromium_path

# As root, without a sandbox; no background connections (the network here is closed to them).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The machine may be loaded: an assertion waits this long for the page to get there (a
# page that never does still fails, only later).
expect.set_options(timeout=20_000)
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


# Per module, not per session: while Playwright's sync API runs, its event loop counts as
# running in this thread, which the asyncio tests of other modules could not start under.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    chromium_path()  # skipped (or failed, where required) before starting the driver
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Debian's chromium (`playwright install` cannot download browsers here); as root, no sandbox.
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def base_url(stack: LocalStack) -> str:
    return f"http://localhost:{stack.ports.http}"


@pytest.fixture(scope="session")
def outbox(stack: LocalStack) -> Outbox:
    return Outbox(stack.outbox)


@pytest.fixture(scope="session")
def admin_url(stack: LocalStack) -> str:
    return f"postgresql://postgres@127.0.0.1:{stack.ports.postgres}/{DATABASE_NAME}"


class Tab:
    """A browser context (its own cookies: one person on one device) and what it reported."""

    def __init__(self, browser: Browser, base_url: str, **options: object) -> None:
        self.watch = Watch()
        self.context: BrowserContext = browser.new_context(base_url=base_url, **options)  # type: ignore[arg-type]
        self.context.add_init_script(REPORT_VIOLATIONS)
        self.context.set_default_timeout(30_000)

    def new_page(self) -> Page:
        return self.watch.attach(self.context.new_page())

    def close(self) -> None:
        self.context.close()

    def assert_clean(self) -> None:
        assert not self.watch.csp_violations, self.watch.csp_violations
        assert not self.watch.page_errors, self.watch.page_errors
        assert not self.watch.dialogs, self.watch.dialogs


@pytest.fixture
def tabs(browser: Browser, base_url: str) -> Iterator[list[Tab]]:
    """Make tabs with `new_tab(tabs)`; every one is checked clean (no CSP violation, no
    uncaught error, no dialog) and closed at the end."""
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        tab.close()
    for tab in opened:
        tab.assert_clean()


@pytest.fixture
def new_tab(browser: Browser, base_url: str, tabs: list[Tab]) -> Callable[..., Tab]:
    def make(**options: object) -> Tab:
        tab = Tab(browser, base_url, **options)
        tabs.append(tab)
        return tab

    return make
