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

Each hashing thread keeps its Argon2 memory between hashes (`argon2_arena.py`). The pool
defaults to one Argon2 lane thread per usable core (`hash_concurrency`): more
concurrent hashes than cores only evict each other's memory from the CPU caches and cost
context switches. In front of the pool, admission is bounded (`HashTicket`): at most
`password_hash_queue` operations wait per process; beyond that a request is refused at once
with a 503 and `Retry-After` (`HashingBusy`) instead of queuing until its client gives up.
Hashes of a new password (sign-up, reset, change, invitation) may fill only half of the queue,
so a flood of sign-ups leaves room for logins. The decision depends on the queue alone and is
taken before any account lookup, so a refusal says nothing about an address.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Literal, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.auth.argon2_arena import ArenaHasher
from services.auth.metrics import PASSWORD_HASH_SECONDS, PASSWORD_HASH_SHED, PASSWORD_HASH_WAITING
from shared.errors import ServiceUnavailable
from shared.settings import Settings

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128

T = TypeVar("T")

# Niceness added to the hashing threads: below the event loop, still far above idle.
HASH_THREAD_NICENESS = 10
# Waiting operations allowed per hashing slot when PASSWORD_HASH_QUEUE is not set.
QUEUE_PER_SLOT = 16
HASHING_BUSY_RETRY_AFTER_SECONDS = 1

# `verify` proves a password (login, re-authentication, sign-up verification); `hash` makes
# the hash of a new one (sign-up, reset, change, invitation), admitted into half the queue.
Kind = Literal["verify", "hash"]


class HashingBusy(ServiceUnavailable):
    """More password checks wait in this process than it hashes in a few seconds: retry later."""

    default_detail = "The service is busy checking passwords; retry after the time in Retry-After."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(HASHING_BUSY_RETRY_AFTER_SECONDS)})


_current_ticket: contextvars.ContextVar[HashTicket | None] = contextvars.ContextVar(
    "password_hash_ticket", default=None
)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def hash_concurrency(settings: Settings) -> int:
    """Concurrent hashes per process: PASSWORD_HASH_CONCURRENCY, else as many as keep one
    Argon2 lane thread per usable core across the uvicorn workers (at least one)."""
    if settings.password_hash_concurrency is not None:
        return settings.password_hash_concurrency
    lanes = settings.web_concurrency * settings.argon2_parallelism
    return max(1, usable_cpus() // lanes)


def hash_queue(settings: Settings, concurrency: int) -> int:
    """Operations allowed to wait for a hashing slot per process."""
    if settings.password_hash_queue is not None:
        return settings.password_hash_queue
    return QUEUE_PER_SLOT * concurrency


class HashTicket:
    """A place in the bounded hashing backlog, held from admission until released.

    Admission comes first (`Passwords.admit`, which refuses with `HashingBusy`). Inside the
    ticket's `with` block it is the current one (a context variable): every hash or
    verification there uses it, without a place of its own. It is released on leaving that
    block, by `release()`, or, if its request is dropped before the block runs, when collected.
    """

    def __init__(self, owner: Passwords) -> None:
        self._owner: Passwords | None = owner
        self._context: contextvars.Token[HashTicket | None] | None = None

    def held_in(self, owner: Passwords) -> bool:
        return self._owner is owner

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._admitted -= 1

    def __enter__(self) -> HashTicket:
        self._context = _current_ticket.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._context is not None:
            _current_ticket.reset(self._context)
            self._context = None
        self.release()

    def __del__(self) -> None:
        self.release()


def _lower_thread_priority() -> None:
    """Executor initializer: lower this thread's CPU priority (Linux; elsewhere a no-op)."""
    with contextlib.suppress(AttributeError, OSError):
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, current + HASH_THREAD_NICENESS))


class Passwords:
    """Hash and verify passwords with Argon2id; one instance per process (made in the lifespan)."""

    def __init__(self, settings: Settings) -> None:
        self.hasher: PasswordHasher = ArenaHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
        )
        self.concurrency = hash_concurrency(settings)
        self.queue = hash_queue(settings, self.concurrency)
        self._executor = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="argon2", initializer=_lower_thread_priority
        )
        self._slots = asyncio.Semaphore(self.concurrency)
        self._admitted = 0  # running and waiting operations, by their tickets
        self._dummy_hash: str | None = None

    def admit(self, kind: Kind, *, shed: bool = True) -> HashTicket:
        """A place in the backlog, or `HashingBusy` when `kind`'s share of it is full.

        `shed=False` admits regardless (work a caller has already answered for)."""
        share = self.queue if kind == "verify" else self.queue // 2
        if shed and self._admitted >= self.concurrency + share:
            PASSWORD_HASH_SHED.labels(kind).inc()
            raise HashingBusy()
        self._admitted += 1
        return HashTicket(self)

    async def start(self) -> None:
        """Make the dummy hash once, with the configured parameters."""
        with self.admit("hash", shed=False):
            self._dummy_hash = await self.hash(secrets.token_urlsafe(24))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, operation: Kind, func: Callable[[], T]) -> T:
        ticket = _current_ticket.get()
        if ticket is None or not ticket.held_in(self):
            with self.admit(operation):
                return await self._run(operation, func)
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
        """The hash of a new password; admitted here (`hash`'s share) unless a ticket is current."""
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

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
