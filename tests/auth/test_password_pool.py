"""The password-hashing pool: bounded, off the event loop, below the event loop's CPU priority."""

from __future__ import annotations

import asyncio
import os
import threading

from argon2 import PasswordHasher

from services.auth.passwords import HASH_THREAD_NICENESS, Passwords


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class Probe(PasswordHasher):
    """The pool's Argon2 hasher with the same parameters, recording the niceness of each thread
    that hashes and how many hashes run at once (each takes 50 ms more)."""

    def __init__(self, hasher: PasswordHasher) -> None:
        super().__init__(
            time_cost=hasher.time_cost,
            memory_cost=hasher.memory_cost,
            parallelism=hasher.parallelism,
            hash_len=hasher.hash_len,
            salt_len=hasher.salt_len,
            type=hasher.type,
        )
        self.niceness: list[int] = []
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self.lock:
            self.niceness.append(_niceness())
            self.running += 1
            self.peak = max(self.peak, self.running)
        threading.Event().wait(0.05)
        try:
            return super().hash(password, salt=salt)
        finally:
            with self.lock:
                self.running -= 1


async def test_hashing_threads_run_below_the_event_loop_priority(make_settings):
    passwords = Passwords(make_settings("auth", password_hash_concurrency=2))
    probe = passwords.hasher = Probe(passwords.hasher)
    try:
        loop_niceness = _niceness()
        hashed = await passwords.hash("correct horse battery staple")
        assert await passwords.verify(hashed, "correct horse battery staple")
    finally:
        passwords.close()
    assert probe.niceness == [min(19, loop_niceness + HASH_THREAD_NICENESS)]
    assert _niceness() == loop_niceness  # the event loop's own thread is untouched


async def test_no_more_hashes_run_at_once_than_the_pool_allows(make_settings):
    passwords = Passwords(make_settings("auth", password_hash_concurrency=2))
    probe = passwords.hasher = Probe(passwords.hasher)
    try:
        hashes = await asyncio.gather(*(passwords.hash(f"password number {i}") for i in range(10)))
    finally:
        passwords.close()
    assert len(set(hashes)) == 10
    assert probe.peak == 2
