"""The per-account second-factor limits are no lockout weapon: wrong TOTP codes from one network
use up that network's hourly window only (the owner elsewhere still signs in), recovery codes
count in no account window, and only the daily window spans networks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.auth.factors.helpers import challenge_of, code_at, enrol_totp, second_factor
from tests.auth.helpers import AuthApp, login, signup


def _wrong(secret: str) -> str:
    return "".join(str((int(d) + 5) % 10) for d in code_at(secret, 1))


async def _wrong_codes(client: httpx.AsyncClient, email: str, secret: str, count: int) -> None:
    for _ in range(count):  # one fresh challenge each: only the account windows count
        challenge = challenge_of(await login(client, email))["challenge"]
        assert (await second_factor(client, challenge, totp_code=_wrong(secret))).status_code == 401


async def test_one_networks_failures_do_not_lock_the_owner_out(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    email, verified = await signup(client, auth.settings)
    secret, codes = await enrol_totp(client, verified.json()["access_token"])
    await _wrong_codes(
        client, email, secret, auth.settings.ratelimit_second_factor_per_account_network_per_hour
    )
    challenge = challenge_of(await login(client, email))["challenge"]
    assert (await second_factor(client, challenge, totp_code=code_at(secret, 1))).status_code == 429

    # A recovery code (unguessable) counts in no account window, even from that network.
    by_recovery = await second_factor(client, challenge, recovery_code=codes[0])
    assert by_recovery.status_code == 200, by_recovery.text

    async with auth.client("203.0.113.50") as owner:
        challenge = challenge_of(await login(owner, email))["challenge"]
        done = await second_factor(owner, challenge, totp_code=code_at(secret, 1))
        assert done.status_code == 200, done.text


async def test_the_daily_window_spans_networks(start_auth: Callable[..., Any]) -> None:
    async with (
        start_auth(ratelimit_second_factor_per_account_per_day=4) as auth,
        auth.client("198.51.100.20") as first,
        auth.client("203.0.113.60") as second,
        auth.client("192.0.2.70") as third,
    ):
        email, verified = await signup(first, auth.settings)
        secret, _ = await enrol_totp(first, verified.json()["access_token"])
        await _wrong_codes(first, email, secret, 2)
        await _wrong_codes(second, email, secret, 2)
        challenge = challenge_of(await login(third, email))["challenge"]
        limited = await second_factor(third, challenge, totp_code=code_at(secret, 1))
        assert limited.status_code == 429
