"""The password-hashing pool: bounded, off the event loop, below the event loop's CPU priority."""

from __future__ import annotations

import asyncio
import os
import threading

from services.auth.passwords import HASH_THREAD_NICENESS, Passwords


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_hashing_threads_run_below_the_event_loop_priority(make_settings):
    passwords = Passwords(make_settings("auth", password_hash_concurrency=2))
    try:
        loop_niceness = _niceness()
        hashed = await passwords.hash("correct horse battery staple")
        assert await passwords.verify(hashed, "correct horse battery staple")
        worker_niceness = await asyncio.get_running_loop().run_in_executor(passwords._executor, _niceness)
    finally:
        passwords.close()
    assert worker_niceness == min(19, loop_niceness + HASH_THREAD_NICENESS)
    assert _niceness() == loop_niceness  # the event loop's own thread is untouched


async def test_no_more_hashes_run_at_once_than_the_pool_allows(make_settings):
    passwords = Passwords(make_settings("auth", password_hash_concurrency=2))
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        threading.Event().wait(0.05)
        with lock:
            running -= 1

    try:
        await asyncio.gather(*(passwords._run("hash", slow) for _ in range(10)))
    finally:
        passwords.close()
    assert peak == 2
