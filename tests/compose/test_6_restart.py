"""Part 6: `down` then `up --wait`: users, sessions and queued emails are still there."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.compose.accounts import REFRESH_COOKIE, account_from, login, register
from tests.compose.conftest import ComposeStack, part_timer, timed

pytestmark = pytest.mark.compose
_part = part_timer("part 6: down + up persistence (total)")


def test_users_sessions_and_queued_emails_survive_down_and_up(
    stack: ComposeStack, client: httpx.Client
) -> None:
    account = register(client, stack, "durable")
    stack.run("stop", "worker")
    queued = client.post("/api/v1/auth/magic-link", json={"email": account.email})
    assert queued.status_code == 202, queued.text  # the job waits in Redis: no worker

    started = time.monotonic()
    stack.down(volumes=False)
    # Issue 17 (operating it) plugs in here: backup while up, restore and signing-key rotation
    # against this same stack (`stack.exec(...)`, `stack.run(...)`), before the `up` below.
    stack.up()
    timed("part 6: down, then up --wait", started)

    assert login(client, account.email).user_id == account.user_id  # the user
    rotated = client.post("/api/v1/auth/refresh", headers={"Cookie": f"{REFRESH_COOKIE}={account.refresh}"})
    assert account_from(rotated, account.email).user_id == account.user_id  # the session
    assert stack.wait_for_email(account.email, "/auth/magic#token=")  # the queued email
