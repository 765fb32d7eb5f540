"""The account pages in Chromium against the e2e stack (tests/e2e/conftest.py), through Traefik.

Pages are opened at `http://localhost:<port>`: APP_BASE_URL's origin, the only one whose
browser requests the refresh endpoints accept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Playwright, expect, sync_playwright

from devstack.run import DATABASE_NAME, LocalStack
from tests.e2e.pages.browser import CHROMIUM_ARGS, Outbox, Tab, chromium_path

# The machine may be loaded: an assertion waits this long for the page to get there (a
# page that never does still fails, only later).
expect.set_options(timeout=20_000)


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
