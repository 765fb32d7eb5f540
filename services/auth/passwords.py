"""Argon2id hashing off the event loop, in a bounded pool.

Each hash holds `argon2_memory_kib` of memory, so the pool has exactly
`password_hash_concurrency` threads and a semaphore of the same size in front of it: a login
storm queues (cheaply, as waiting coroutines) instead of running hundreds of hashes at once,
and the event loop keeps serving other requests (argon2-cffi releases the GIL while hashing).
Unknown users are checked against a dummy hash made with the same parameters so that the
time of a failed login does not say whether the account exists.

The hashing threads run at a lower CPU priority (Linux niceness is per thread and inherited by
the lane threads argon2 starts), so under a login storm hashing gets the CPU the event loop
leaves idle instead of starving it: logins per second stay the same, `/health` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.auth.metrics import PASSWORD_HASH_SECONDS, PASSWORD_HASH_WAITING
from shared.settings import Settings

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128

T = TypeVar("T")

# Niceness added to the hashing threads: below the event loop, still far above idle.
HASH_THREAD_NICENESS = 10


def _lower_thread_priority() -> None:
    """Executor initializer: lower this thread's CPU priority (Linux; elsewhere a no-op)."""
    with contextlib.suppress(AttributeError, OSError):
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, current + HASH_THREAD_NICENESS))


class Passwords:
    """Hash and verify passwords with Argon2id; one instance per process (made in the lifespan)."""

    def __init__(self, settings: Settings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        size = settings.password_hash_concurrency
        self._executor = ThreadPoolExecutor(
            max_workers=size, thread_name_prefix="argon2", initializer=_lower_thread_priority
        )
        self._slots = asyncio.Semaphore(size)
        self._dummy_hash: str | None = None

    async def start(self) -> None:
        """Make the dummy hash once, with the configured parameters."""
        self._dummy_hash = await self.hash(secrets.token_urlsafe(24))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, operation: str, func: Callable[[], T]) -> T:
        PASSWORD_HASH_WAITING.inc()
        try:
            await self._slots.acquire()
        finally:
            PASSWORD_HASH_WAITING.dec()
        try:
            loop = asyncio.get_running_loop()
            start = time.perf_counter()
            try:
                return await loop.run_in_executor(self._executor, func)
            finally:
                PASSWORD_HASH_SECONDS.labels(operation).observe(time.perf_counter() - start)
        finally:
            self._slots.release()

    async def hash(self, password: str) -> str:
        return await self._run("hash", lambda: self.hasher.hash(password))

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches; an absent hash costs a dummy verification."""
        target = stored_hash or self._dummy_hash
        if target is None:  # pragma: no cover - start() runs in the lifespan
            target = await self.hash(secrets.token_urlsafe(24))
            self._dummy_hash = target

        def check() -> bool:
            try:
                return self.hasher.verify(target, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        matched = await self._run("verify", check)
        return matched and stored_hash is not None

    async def burn(self, password: str) -> None:
        """Spend the same time as a verification without any account (unknown users)."""
        await self.verify(None, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
