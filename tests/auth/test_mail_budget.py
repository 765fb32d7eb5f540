"""The mail budget of an address is no weapon (second security review, findings 1 and 2).

Tried as an attacker would, through HTTP, with the production defaults: only mails actually sent
count, per address AND network, and a network that has sent an address nothing this hour gets
its mail whatever other networks did.
"""

from __future__ import annotations

from typing import Any

from services.auth.limits import client_site
from shared.settings import Settings
from tests.auth.helpers import (
    PREFIX,
    admin,
    last_token,
    login,
    new_email,
    queued_emails,
    register,
    signup,
    verify_email,
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
VICTIM_PASSWORD = "victim's own password"
ATTACKER_PASSWORD = "attacker password 1"


async def _templates(settings: Settings, to: str) -> list[str]:
    return [e["template"] for e in await queued_emails(settings, to)]


async def test_a_capped_address_still_records_the_owners_signup(start_auth: Any, admin_dsn: str) -> None:
    """Finding 1: the attacker registers the victim's address and fills its budget with nine
    magic-link and reset requests that send nothing; the victim's own registration must still
    store its attempt, and `verify-email` must not activate the attacker's."""
    victim = new_email()
    async with start_auth(**DEFAULTS) as app:
        async with app.client("203.0.113.31") as attacker:
            assert (await register(attacker, victim, ATTACKER_PASSWORD)).status_code == 202
            for path in ("/magic-link", "/password/forgot", "/magic-link", "/password/forgot") * 2 + (
                "/magic-link",
            ):
                assert (await attacker.post(f"{PREFIX}{path}", json={"email": victim})).status_code == 202
        # Nothing but the one verification mail was sent, so nothing else was counted.
        assert await _templates(app.settings, victim) == ["verify_email"]
        async with app.client("198.51.100.31") as owner:
            assert (await register(owner, victim, VICTIM_PASSWORD)).status_code == 202
            async with admin(admin_dsn) as conn:
                attempts = await conn.fetchval(
                    "SELECT count(*) FROM signup_attempts WHERE email = $1", victim
                )
            assert attempts == 2
            # The owner's link came, and it activates the owner's attempt with the owner's password.
            assert await _templates(app.settings, victim) == ["verify_email", "verify_email"]
            token = await last_token(app.settings, victim, "verify_email")
            assert (await verify_email(owner, token, VICTIM_PASSWORD)).status_code == 200
            assert (await login(owner, victim, VICTIM_PASSWORD)).status_code == 200
            assert (await login(owner, victim, ATTACKER_PASSWORD)).status_code == 401


async def test_a_capped_address_records_the_attempt_but_sends_no_mail(
    start_auth: Any, admin_dsn: str
) -> None:
    """Beyond the budget only the mail is left out: the attempt exists, and its link can be
    asked for again from a network that has the budget."""
    victim = new_email()
    async with start_auth(**DEFAULTS) as app:
        async with app.client("203.0.113.32") as same_network:
            for _ in range(4):  # three mails from one network, then none
                assert (await register(same_network, victim, VICTIM_PASSWORD)).status_code == 202
        assert await _templates(app.settings, victim) == ["verify_email"] * 3
        async with admin(admin_dsn) as conn:
            assert await conn.fetchval("SELECT count(*) FROM signup_attempts WHERE email = $1", victim) == 4
        async with app.client("198.51.100.32") as elsewhere:
            assert (
                await elsewhere.post(f"{PREFIX}/email/verify-request", json={"email": victim})
            ).status_code == 202
        assert await _templates(app.settings, victim) == ["verify_email"] * 4


async def test_abusing_networks_never_keep_the_owner_from_a_reset_or_magic_link(start_auth: Any) -> None:
    """Finding 2: ten requests an hour from anywhere must not stop every reset and magic-link
    mail to an account. Each network gets at most three mails, the address at most ten in all,
    except the first mail to a network that sent it none."""
    async with start_auth(**DEFAULTS) as app:
        async with app.client("198.51.100.33") as c:
            victim, _ = await signup(c, app.settings)  # one verification mail, from this network
        for network in ("203.0.113.41", "203.0.113.42", "203.0.113.43", "203.0.113.44", "2001:db8:44::1"):
            async with app.client(network) as attacker:
                for path in ("/password/forgot", "/magic-link") * 5:
                    assert (await attacker.post(f"{PREFIX}{path}", json={"email": victim})).status_code == 202
        sent = await _templates(app.settings, victim)
        # 1 (sign-up) + 3 + 3 + 3 fill the global cap of 10; the fourth and fifth networks still
        # get one each (their first of the hour), and nothing more.
        assert len(sent) == 1 + 3 + 3 + 3 + 1 + 1
        # The exception is per IPv6 site (/48), not per /64: another /64 of the attacker's /48
        # adds nothing, so the volume an attacker causes is bounded by the sites they hold.
        async with app.client("2001:db8:44:1::1") as same_site:
            assert (await same_site.post(f"{PREFIX}/magic-link", json={"email": victim})).status_code == 202
        assert len(await _templates(app.settings, victim)) == len(sent)
        async with app.client("198.51.100.99") as owner:
            assert (await owner.post(f"{PREFIX}/password/forgot", json={"email": victim})).status_code == 202
        after = await _templates(app.settings, victim)
        assert after[len(sent) :] == ["password_reset"]
        async with app.client("198.51.100.98") as owner_elsewhere:
            assert (
                await owner_elsewhere.post(f"{PREFIX}/magic-link", json={"email": victim})
            ).status_code == 202
        assert (await _templates(app.settings, victim))[len(after) :] == ["magic_link"]


def test_the_first_mail_exception_is_per_ipv4_address_and_per_ipv6_site() -> None:
    assert client_site("192.0.2.9") == "192.0.2.9"
    assert client_site("::ffff:192.0.2.9") == "192.0.2.9"
    assert client_site("2001:db8:44:1::1") == client_site("2001:db8:44:ffff::9") == "2001:db8:44::/48"
    assert client_site(None) == "unknown"
