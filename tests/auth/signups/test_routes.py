"""Sign-up attempts through HTTP: no pre-hijacking of an address by whoever registers it.

Security review finding 1 (both variants and the link scanner) and finding 10 (a squatted
sign-up never blocks an invitation, and re-sending links does not extend an attempt's life).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx

from services.auth.signups.service import purge_expired_attempts
from shared.opaque_tokens import new_token
from tests.auth.helpers import (
    PREFIX,
    AuthApp,
    admin,
    invite,
    last_token,
    login,
    new_email,
    queued_emails,
    register,
    signup,
    verify_email,
)

VICTIM_PASSWORD = "victim's own password"
ATTACKER_PASSWORD = "attacker password 1"


async def _verify_tokens(auth: AuthApp, email: str) -> list[str]:
    emails = await queued_emails(auth.settings, email)
    return [e["context"]["link"].split("#token=")[1] for e in emails if e["template"] == "verify_email"]


async def _one_attempt(auth: AuthApp, client: httpx.AsyncClient) -> tuple[str, str]:
    """A new address registered once (with VICTIM_PASSWORD): the address and its link's token."""
    email = new_email()
    await register(client, email, VICTIM_PASSWORD)
    [link] = await _verify_tokens(auth, email)
    return email, link


async def _attempts(admin_dsn: str, email: str) -> int:
    async with admin(admin_dsn) as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM signup_attempts WHERE email = $1", email)
    return count


async def test_squatter_registered_first_cannot_take_the_account(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    """(a) The attacker registers the victim's address; the victim clicks the mail's link."""
    victim = new_email()
    assert (await register(client, victim, ATTACKER_PASSWORD)).status_code == 202
    [link] = await _verify_tokens(auth, victim)
    # The victim, who never chose the attacker's password, opens the link: nothing happens.
    refused = await verify_email(client, link, VICTIM_PASSWORD)
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/invalid-token")
    assert (await login(client, victim, ATTACKER_PASSWORD)).status_code == 401
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", victim) == 0
    # The victim signs up for real: their own attempt, their own link, their own password.
    assert (await register(client, victim, VICTIM_PASSWORD)).status_code == 202
    own = (await _verify_tokens(auth, victim))[-1]
    verified = await verify_email(client, own, VICTIM_PASSWORD)
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["role"] == "owner"
    assert (await login(client, victim, ATTACKER_PASSWORD)).status_code == 401
    assert (await login(client, victim, VICTIM_PASSWORD)).status_code == 200
    # The attacker's attempt is gone with the account's creation, whatever password is tried.
    assert (await verify_email(client, link, ATTACKER_PASSWORD)).status_code == 400
    assert await _attempts(admin_dsn, victim) == 0


async def test_squatter_registering_in_between_cannot_take_the_account(
    auth: AuthApp, client: httpx.AsyncClient
) -> None:
    """(b) The victim registers; before they click, the attacker registers the address again."""
    victim = new_email()
    await register(client, victim, VICTIM_PASSWORD)
    await register(client, victim, ATTACKER_PASSWORD)
    victims_link, attackers_link = await _verify_tokens(auth, victim)
    # The victim's newest mail carries the attacker's attempt: with the victim's password it
    # activates nothing (and the attempt stays as it was).
    assert (await verify_email(client, attackers_link, VICTIM_PASSWORD)).status_code == 400
    # The victim's own link was not retired by the later registration.
    verified = await verify_email(client, victims_link, VICTIM_PASSWORD)
    assert verified.status_code == 200, verified.text
    assert (await login(client, victim, ATTACKER_PASSWORD)).status_code == 401
    assert (await login(client, victim, VICTIM_PASSWORD)).status_code == 200
    assert (await verify_email(client, attackers_link, ATTACKER_PASSWORD)).status_code == 400


async def test_a_link_posted_without_the_password_activates_nothing(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    """A link scanner (or a stranger who got the mail) POSTs the token alone."""
    email, link = await _one_attempt(auth, client)
    scanned = await client.post(f"{PREFIX}/email/verify", json={"token": link})
    assert scanned.status_code == 422
    assert scanned.headers["content-type"] == "application/problem+json"
    empty = await client.post(f"{PREFIX}/email/verify", json={"token": link, "password": ""})
    assert empty.status_code == 422
    async with admin(admin_dsn) as conn:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0
    assert await _attempts(admin_dsn, email) == 1
    assert (await verify_email(client, link, VICTIM_PASSWORD)).status_code == 200


async def test_wrong_password_answers_like_a_bad_token_and_keeps_the_attempt(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, link = await _one_attempt(auth, client)
    wrong = await verify_email(client, link, "some other password")
    unknown = await verify_email(client, "A" * 43, VICTIM_PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    strip = {"request_id", "instance"}
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }
    assert await _attempts(admin_dsn, email) == 1
    assert (await verify_email(client, link, VICTIM_PASSWORD)).status_code == 200


async def test_magic_link_login_drops_pending_attempts(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    """An attempt left for an address that has an account (a registration racing an
    acceptance) is dropped when the mailbox owner signs in by magic link."""
    email, _ = await signup(client, auth.settings, password=VICTIM_PASSWORD)
    _, digest = new_token()
    async with admin(admin_dsn) as conn:
        await conn.execute(
            "INSERT INTO signup_attempts (email, token_hash, password_hash, name, org_name,"
            " expires_at) VALUES ($1, $2, 'x', 'Eve', 'Evil', now() + interval '1 hour')",
            email,
            digest,
        )
    await client.post(f"{PREFIX}/magic-link", json={"email": email})
    magic = await last_token(auth.settings, email, "magic_link")
    assert (await client.post(f"{PREFIX}/magic-link/verify", json={"token": magic})).status_code == 200
    assert await _attempts(admin_dsn, email) == 0


async def test_a_squatted_signup_never_blocks_an_invitation(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    """Finding 10: an unverified sign-up of the invitee's address must not make acceptance a 409."""
    invitee = new_email()
    await register(client, invitee, ATTACKER_PASSWORD)
    await register(client, invitee, ATTACKER_PASSWORD)  # re-registering changes nothing
    squatted = await _verify_tokens(auth, invitee)
    _, owner = await signup(client, auth.settings)
    token, _ = await invite(admin_dsn, owner, invitee)
    accepted = await client.post(
        f"{PREFIX}/invitations/accept",
        json={"token": token, "name": "Grace", "password": VICTIM_PASSWORD},
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["org"]["id"] == owner.json()["org"]["id"]
    assert await _attempts(admin_dsn, invitee) == 0
    for link in squatted:
        assert (await verify_email(client, link, ATTACKER_PASSWORD)).status_code == 400
    assert (await login(client, invitee, ATTACKER_PASSWORD)).status_code == 401


async def test_attempts_expire_and_resent_links_do_not_extend_them(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    email, fresh = new_email(), new_email()
    await register(client, email, VICTIM_PASSWORD)
    await register(client, fresh, VICTIM_PASSWORD)
    ttl = auth.settings.unverified_signup_ttl_seconds
    async with admin(admin_dsn) as conn:
        # The first registration is almost as old as the sign-up TTL allows.
        await conn.execute(
            "UPDATE signup_attempts SET started_at = now() - make_interval(secs => $2 - 60) WHERE email = $1",
            email,
            ttl,
        )
    await client.post(f"{PREFIX}/email/verify-request", json={"email": email})
    async with admin(admin_dsn) as conn:
        newest = await conn.fetchval(
            "SELECT expires_at - now() FROM signup_attempts WHERE email = $1"
            " ORDER BY created_at DESC LIMIT 1",
            email,
        )
        assert newest.total_seconds() <= 60
        await conn.execute(
            "UPDATE signup_attempts SET expires_at = now() - interval '1 second' WHERE email = $1",
            email,
        )
    assert await purge_expired_attempts(auth.state) >= 2
    assert await _attempts(admin_dsn, email) == 0
    assert await _attempts(admin_dsn, fresh) == 1
    for link in await _verify_tokens(auth, email):
        assert (await verify_email(client, link, VICTIM_PASSWORD)).status_code == 400


async def test_registrations_beyond_the_hashing_backlog_are_503_and_the_admitted_are_recorded(
    start_auth: Callable[..., Any], admin_dsn: str
) -> None:
    """Sign-up hashes after its 202, so its place in the backlog is taken before the answer:
    with one lane and a queue of four (sign-ups may fill half of it: three places in all), five
    concurrent registrations whose hashes are held get three 202s and two 503s, and each of the
    three admitted attempts is recorded once its hash runs."""
    async with (
        start_auth(password_hash_concurrency=1, password_hash_queue=4) as auth,
        auth.client() as client,
    ):
        real = auth.state.passwords.hasher
        gate = threading.Event()

        class HeldHasher:
            def hash(self, password: str) -> str:
                gate.wait(30)
                return str(real.hash(password))

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        auth.state.passwords.hasher = HeldHasher()
        addresses = [new_email() for _ in range(5)]
        try:
            tasks = [asyncio.create_task(register(client, address)) for address in addresses]
            for _ in range(3000):  # bounded: the two refusals come back while the hashes wait
                if sum(task.done() for task in tasks) >= 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            gate.set()
        answers = await asyncio.gather(*tasks)
        assert sorted(a.status_code for a in answers) == [202, 202, 202, 503, 503]
        assert all(a.headers["retry-after"] == "1" for a in answers if a.status_code == 503)
        recorded = 0
        for _ in range(3000):
            async with admin(admin_dsn) as conn:
                recorded = await conn.fetchval(
                    "SELECT count(*) FROM signup_attempts WHERE email = ANY($1::text[])", addresses
                )
            if recorded == 3:
                break
            await asyncio.sleep(0.01)
        assert recorded == 3
