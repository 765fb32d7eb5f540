"""Auth limits are not a lockout weapon (security review findings 4, 7 and 9), through HTTP.

Limits here are the production defaults, not the suite's generous ones.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.ratelimit import client_network
from shared.settings import Settings
from tests.auth.helpers import (
    PASSWORD,
    PREFIX,
    clear_of_minute_boundary,
    login,
    new_email,
    queued_emails,
    signup,
)

DEFAULTS = {
    name: Settings.model_fields[name].default
    for name in (
        "ratelimit_auth_ip_per_minute",
        "ratelimit_auth_email_per_hour",
        "ratelimit_auth_mails_per_address_per_hour",
        "ratelimit_auth_mails_per_address_network_per_hour",
    )
}


async def test_failures_from_one_network_never_lock_out_the_owner(start_auth: Any) -> None:
    """Finding 4: 10 each on /login, /magic-link and /password/forgot from one address must not
    refuse the victim's correct password from any address."""
    assert DEFAULTS["ratelimit_auth_email_per_hour"] == 10
    async with start_auth(**DEFAULTS) as app:
        async with app.client("198.51.100.201") as victim_client:
            victim, _ = await signup(victim_client, app.settings)
        async with app.client("203.0.113.201") as attacker:
            await clear_of_minute_boundary(app.settings, margin_ms=20_000)
            failed = [await login(attacker, victim, "guessed password") for _ in range(10)]
            assert {r.status_code for r in failed} == {401}
            for path in ("/magic-link", "/password/forgot"):
                answers = [await attacker.post(f"{PREFIX}{path}", json={"email": victim}) for _ in range(10)]
                assert {r.status_code for r in answers} == {202}
            # The attacker's own network is now refused on this address...
            assert (await login(attacker, victim, PASSWORD)).status_code == 429
        # ...while the owner, from a network that has not been failing, gets in at once.
        async with app.client("198.51.100.77") as owner:
            signed_in = await login(owner, victim, PASSWORD)
            assert signed_in.status_code == 200, signed_in.text
        async with app.client("2001:db8:77::5") as owner_v6:
            assert (await login(owner_v6, victim, PASSWORD)).status_code == 200


async def test_mails_per_address_are_capped_and_the_answer_stays_202(start_auth: Any) -> None:
    async with start_auth(
        ratelimit_auth_mails_per_address_per_hour=3, ratelimit_auth_mails_per_address_network_per_hour=2
    ) as app:
        async with app.client("198.51.100.202") as c:
            known, _ = await signup(c, app.settings)  # one verification mail
        unknown = new_email()
        for address in (known, unknown):
            for _ in range(4):  # from one network: two mails, then none (the answer is the same)
                async with app.client("192.0.2.100") as c:
                    r = await c.post(f"{PREFIX}/magic-link", json={"email": address})
                    assert r.status_code == 202
        assert [e["template"] for e in await queued_emails(app.settings, known)] == [
            "verify_email",
            "magic_link",
            "magic_link",
        ]
        # The global cap (3) is full: another network that already had a mail gets no more...
        async with app.client("198.51.100.202") as c:
            assert (await c.post(f"{PREFIX}/magic-link", json={"email": known})).status_code == 202
        assert len(await queued_emails(app.settings, known)) == 3
        # ...while a network that sent the address nothing this hour gets its one mail.
        for _ in range(2):
            async with app.client("192.0.2.101") as c:
                assert (await c.post(f"{PREFIX}/magic-link", json={"email": known})).status_code == 202
        assert len(await queued_emails(app.settings, known)) == 4
        assert await queued_emails(app.settings, unknown) == []


async def test_ipv6_clients_share_the_window_of_their_64(start_auth: Any) -> None:
    """Finding 7: the addresses of one /64 share one budget, not one each."""
    assert client_network("2001:db8:aa:1:ffff::1") == "2001:db8:aa:1::/64"
    assert client_network("::ffff:192.0.2.9") == "192.0.2.9"
    assert client_network("192.0.2.9") == "192.0.2.9"
    async with start_auth(ratelimit_auth_ip_per_minute=3) as app:
        await clear_of_minute_boundary(app.settings)
        statuses = []
        for host in range(1, 6):
            async with app.client(f"2001:db8:aa:1::{host:x}") as c:
                statuses.append((await login(c, new_email(), PASSWORD)).status_code)
        assert statuses == [401, 401, 401, 429, 429]
        async with app.client("2001:db8:aa:2::1") as neighbour:  # the next /64
            assert (await login(neighbour, new_email(), PASSWORD)).status_code == 401


async def test_ratelimit_headers_do_not_reveal_activity_on_an_address(start_auth: Any) -> None:
    """Finding 9: RateLimit-Remaining on login must not tell how often others tried an address."""
    async with start_auth(**DEFAULTS) as app:
        async with app.client("198.51.100.203") as c:
            target, _ = await signup(c, app.settings)
        async with app.client("203.0.113.203") as attacker:
            for _ in range(4):
                await login(attacker, target, "guessed password")
        answers: list[httpx.Response] = []
        for index, address in enumerate((target, new_email())):
            async with app.client(f"198.51.100.{210 + index}") as observer:
                answers.append(await login(observer, address, "guessed password"))
        seen, fresh = answers
        for name in ("ratelimit-limit", "ratelimit-remaining"):
            assert seen.headers[name] == fresh.headers[name], name
        # Only the caller's network window is shown (30 a minute, this is its first request).
        assert seen.headers["ratelimit-limit"] == "30"
        assert seen.headers["ratelimit-remaining"] == "29"
