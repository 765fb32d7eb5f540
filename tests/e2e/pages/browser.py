"""Real Chromium for the account pages: finding it (Debian's `chromium`), axe-core, the
emails of the stack's outbox, and a page that records every CSP violation and script error.

Chromium and axe-core are not Python packages. Without them these tests are skipped with the
reason, except where they are required (`CI` or `REQUIRE_BROWSER=1`): then a missing one is a
failure. `.ci/run` installs both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from devstack.paths import ROOT

AXE_DIR = Path(os.environ.get("AXE_CORE_DIR") or ROOT / ".cache" / "npm" / "node_modules" / "axe-core")
AXE_VERSION = "4.14.1"


def browser_required() -> bool:
    flag = os.environ.get("REQUIRE_BROWSER", "").strip().lower()
    return flag in ("1", "true", "yes") or bool(os.environ.get("CI", "").strip())


def _missing(reason: str) -> None:
    if browser_required():
        pytest.fail(reason + " (required: CI or REQUIRE_BROWSER=1 is set)")
    pytest.skip(reason)


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        _missing("`chromium` not found: apt-get install chromium (Debian) to run the browser tests")
        raise AssertionError("unreachable")
    return path


def axe_source() -> str:
    script = AXE_DIR / "axe.min.js"
    if not script.exists():
        _missing(
            f"axe-core not found at {script}: "
            f"npm install --prefix .cache/npm axe-core@{AXE_VERSION} (or set AXE_CORE_DIR)"
        )
    return script.read_text()


# Every CSP violation reaches the console through this listener, whatever the page's own code.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
});
"""


@dataclass
class Watch:
    """What the pages of one browser context said: CSP violations, uncaught errors, dialogs."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("dialog", self._dialog)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    @property
    def csp_violations(self) -> list[str]:
        markers = ("Content Security Policy", "CSP violation")
        return [text for text in self.console_errors if any(marker in text for marker in markers)]


TOKEN_LINK = r"(https?://[^\s\"'<>]+{page}#token=[A-Za-z0-9_\-.~%]+)"


@dataclass
class Outbox:
    """The stack's mail: one JSON file per email (devstack's worker outbox)."""

    directory: Path

    def messages(self, to: str) -> list[dict[str, Any]]:
        found = []
        # Not the worker's `.tmp-*.json` files: renamed into place when complete, they may be
        # gone between listing and reading.
        written = [path for path in self.directory.glob("*.json") if not path.name.startswith(".")]
        for path in sorted(written, key=lambda p: p.stat().st_mtime_ns):
            try:
                message: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            recipients = message.get("to") or []
            recipients = recipients if isinstance(recipients, list) else [recipients]
            if to.lower() in (r.lower() for r in recipients):
                found.append(message)
        return found

    def count(self, to: str) -> int:
        return len(self.messages(to))

    def link(self, to: str, page: str, seen: int = 0, timeout: float = 60.0) -> str:
        """The `page#token=` link of the first email to `to` after the first `seen` ones."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages(to)[seen:]:
                match = re.search(TOKEN_LINK.format(page=re.escape(page)), message.get("text", ""))
                if match:
                    return match.group(1)
            assert time.monotonic() < deadline, f"no {page} link to {to} in {self.directory}"
            time.sleep(0.1)


def run_sql(admin_url: str, statement: str, *args: object) -> str:
    """One statement as the database administrator (in a thread: Playwright's sync API owns
    this thread's event loop)."""
    import asyncio
    import threading

    import asyncpg

    result: list[str] = []

    async def execute() -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            result.append(await connection.execute(statement, *args))
        finally:
            await connection.close()

    worker = threading.Thread(target=lambda: asyncio.run(execute()))
    worker.start()
    worker.join(60)
    assert result, "the statement did not complete"
    return result[0]


SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


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
