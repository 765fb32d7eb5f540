"""Shedding through the real auth app: a full hashing backlog is a clean 503 problem with
Retry-After, never a 500, never a lost request, and the same answer for every address."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from services.auth.passwords import HashingBusy
from services.auth.signups import service as signups
from services.auth.state import ClientInfo
from tests.auth.helpers import admin, comparable, login, new_email, signup
from tests.auth.passwords.test_backlog import settle_until


class GatedVerify:
    """The real hasher, except that every verification waits until `gate` is set."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.gate = threading.Event()

    def verify(self, stored: str, password: str) -> bool:
        self.gate.wait(30)
        return bool(self.real.verify(stored, password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_a_full_backlog_answers_every_address_the_same_503_and_then_recovers(start_auth):
    async with (
        start_auth(password_hash_concurrency=1, password_hash_queue=0) as auth,
        auth.client() as client,
    ):
        known, _ = await signup(client, auth.settings)
        held = auth.state.passwords.admit("verify")  # the only place in the backlog
        try:
            answers = [
                await login(client, known),
                await login(client, known, "a wrong password"),
                await login(client, new_email()),
            ]
        finally:
            held.release()
        for answer in answers:
            assert answer.status_code == 503
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["retry-after"] == "1"
            assert "set-cookie" not in answer.headers
        assert len({str(comparable(a)) for a in answers}) == 1
        assert (await login(client, known)).status_code == 200


async def test_concurrent_logins_beyond_the_bound_are_shed_and_the_rest_succeed(start_auth):
    async with (
        start_auth(password_hash_concurrency=1, password_hash_queue=2) as auth,
        auth.client() as client,
    ):
        emails = [(await signup(client, auth.settings))[0] for _ in range(5)]
        real = auth.state.passwords.hasher
        fake = GatedVerify(real)
        auth.state.passwords.hasher = fake
        try:
            tasks = [asyncio.create_task(login(client, email)) for email in emails]
            await settle_until(lambda: sum(t.done() for t in tasks) == 2)
            shed = [t.result() for t in tasks if t.done()]
            fake.gate.set()
            answers = await asyncio.gather(*tasks)
        finally:
            auth.state.passwords.hasher = real
    assert [a.status_code for a in shed] == [503, 503]
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 503, 503]


async def test_registrations_beyond_the_bound_are_refused_before_the_answer_and_none_is_lost(
    start_auth, admin_dsn
):
    # concurrency 1 + half of a queue of 4: three registrations may hold a place at once.
    async with start_auth(password_hash_concurrency=1, password_hash_queue=4) as auth:
        state = auth.state
        client = ClientInfo(ip="198.51.100.9", user_agent="test")
        tickets: list[Any] = []
        refused = 0
        for _ in range(3 + 2):
            try:
                tickets.append(signups.admit(state))
            except HashingBusy:
                refused += 1
        assert (len(tickets), refused) == (3, 2)
        addresses = [new_email() for _ in tickets]

        class Budget:
            async def take(self) -> bool:
                return False

        await asyncio.gather(
            *(
                signups.register(
                    state,
                    email=address,
                    password="a long enough password",
                    name="Ada",
                    org_name="Acme",
                    client=client,
                    mail=Budget(),  # type: ignore[arg-type]
                    ticket=ticket,
                )
                for address, ticket in zip(addresses, tickets, strict=True)
            )
        )
        assert state.passwords._admitted == 0
    async with admin(admin_dsn) as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM signup_attempts WHERE email = ANY($1::text[])", addresses
        )
    assert recorded == 3
