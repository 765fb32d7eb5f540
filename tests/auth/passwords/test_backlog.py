"""The bounded password-hashing backlog: admission, shedding, the sign-ups' share, tickets.

A fake hasher that blocks until released stands in for Argon2, so which operations are waiting
is known exactly (no timing involved).
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest

from services.auth import passwords as passwords_module
from services.auth.metrics import PASSWORD_HASH_SHED
from services.auth.passwords import HashingBusy, Passwords, hash_concurrency, hash_queue


class GatedHasher:
    """Stands in for argon2's PasswordHasher: every call waits until `gate` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls = 0

    def hash(self, password: str) -> str:
        self.calls += 1
        self.gate.wait(30)
        return f"hashed:{password}"

    def verify(self, stored: str, password: str) -> bool:
        self.calls += 1
        self.gate.wait(30)
        return stored == f"hashed:{password}"


def gated(make_settings: Any, **overrides: Any) -> tuple[Passwords, GatedHasher]:
    passwords = Passwords(make_settings("auth", **overrides))
    fake = GatedHasher()
    passwords.hasher = fake  # type: ignore[assignment]
    return passwords, fake


async def settle_until(predicate: Any) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_the_default_pool_keeps_one_argon2_lane_per_usable_core(make_settings, monkeypatch):
    monkeypatch.setattr(passwords_module, "usable_cpus", lambda: 8)
    settings = make_settings("auth", argon2_parallelism=1, web_concurrency=2)
    assert hash_concurrency(settings) == 4
    assert hash_queue(settings, 4) == 4 * passwords_module.QUEUE_PER_SLOT
    assert hash_concurrency(make_settings("auth", argon2_parallelism=4)) == 2
    assert hash_concurrency(make_settings("auth", argon2_parallelism=4, web_concurrency=4)) == 1
    explicit = make_settings("auth", password_hash_concurrency=3, password_hash_queue=5)
    assert (hash_concurrency(explicit), hash_queue(explicit, 3)) == (3, 5)


async def test_new_password_hashes_beyond_their_share_are_shed_and_none_is_lost(make_settings):
    # concurrency 2 + half of a queue of 4: four new-password hashes may be in the backlog.
    passwords, fake = gated(make_settings, password_hash_concurrency=2, password_hash_queue=4)
    shed_before = PASSWORD_HASH_SHED.labels("hash")._value.get()
    try:
        tasks = [asyncio.create_task(passwords.hash(f"password-{i}")) for i in range(4 + 3)]
        await settle_until(lambda: sum(t.done() for t in tasks) == 3)
        refused = [t for t in tasks if t.done()]
        assert all(isinstance(t.exception(), HashingBusy) for t in refused)
        assert fake.calls == 2  # the pool runs two; two wait; three were refused at once
        fake.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        passwords.close()
    admitted = [i for i, task in enumerate(tasks) if task not in refused]
    assert [results[i] for i in admitted] == [f"hashed:password-{i}" for i in admitted]
    assert len(admitted) == 4
    assert PASSWORD_HASH_SHED.labels("hash")._value.get() - shed_before == 3
    assert passwords._admitted == 0


async def test_a_flood_of_new_passwords_leaves_room_for_logins(make_settings):
    passwords, fake = gated(make_settings, password_hash_concurrency=1, password_hash_queue=4)
    try:
        flood = [asyncio.create_task(passwords.hash(f"signup-{i}")) for i in range(10)]
        await settle_until(lambda: sum(t.done() for t in flood) == 7)  # 1 running + 2 waiting
        logins = [asyncio.create_task(passwords.verify("hashed:pw", "pw")) for _ in range(3)]
        await settle_until(lambda: sum(t.done() for t in logins) == 1)  # the queue's other half: 2
        fake.gate.set()
        login_results = await asyncio.gather(*logins, return_exceptions=True)
        await asyncio.gather(*flood, return_exceptions=True)
    finally:
        passwords.close()
    assert login_results.count(True) == 2
    assert sum(isinstance(r, HashingBusy) for r in login_results) == 1


async def test_a_ticket_is_released_by_its_block_and_when_its_request_is_dropped(make_settings):
    passwords = Passwords(make_settings("auth", password_hash_concurrency=1, password_hash_queue=0))
    try:

        def fail_while_admitted() -> None:
            with passwords.admit("verify"):
                assert passwords._admitted == 1
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail_while_admitted()
        assert passwords._admitted == 0
        ticket = passwords.admit("hash")
        with pytest.raises(HashingBusy):
            passwords.admit("verify")
        del ticket
        gc.collect()
        assert passwords._admitted == 0
        admitted = passwords.admit("verify", shed=True)
        beyond = passwords.admit("verify", shed=False)  # work already answered for
        assert passwords._admitted == 2
        admitted.release()
        admitted.release()  # idempotent
        beyond.release()
        assert passwords._admitted == 0
    finally:
        passwords.close()


async def test_a_refusal_is_a_503_problem_with_retry_after():
    error = HashingBusy()
    assert (error.status, error.slug) == (503, "service-unavailable")
    assert error.headers == {"Retry-After": "1"}


def test_an_empty_variable_means_derived(make_settings, monkeypatch):
    monkeypatch.setattr(passwords_module, "usable_cpus", lambda: 4)
    settings = make_settings("auth", password_hash_concurrency="", password_hash_queue="")
    assert (settings.password_hash_concurrency, settings.password_hash_queue) == (None, None)
    assert hash_concurrency(settings) == 4
