"""Argon2id whose working memory stays with the hashing thread between hashes.

argon2-cffi's `PasswordHasher` lets the C library `malloc` the `memory_cost` KiB of every hash
and `free` it afterwards. Above glibc's largest mmap threshold (32 MiB; the default 64 MiB is
above it) every hash is a fresh mapping: the kernel faults in and zeroes each of its pages, a
sixth of the hash's CPU time spent in the kernel. `ArenaHasher` hands Argon2 (through
argon2-cffi's own `core`, the binding of `argon2_ctx`, whose context takes an allocator) one
mapping per hashing thread, made on its first hash and kept: the pages are faulted once. Argon2
still wipes the memory after each hash (the C library's `clear_internal_memory`), and never
reads a block it has not written in the same hash, so reuse leaks nothing between hashes.

The memory a process keeps is `memory_cost` per hashing thread (the pool's size). The encoded
hashes are argon2-cffi's, byte for byte; a stored hash with other parameters is verified by
argon2-cffi itself.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import mmap
import os
import threading
from typing import Any, Literal

from argon2 import Parameters, PasswordHasher, Type, extract_parameters
from argon2.exceptions import HashingError, InvalidHashError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION, core, error_to_str, ffi

# argon2.h: ARGON2_OK, ARGON2_MEMORY_ALLOCATION_ERROR (what the allocator answers if it fails),
# ARGON2_DEFAULT_FLAGS (what argon2-cffi passes).
_OK = 0
_ALLOCATION_ERROR = -22
_DEFAULT_FLAGS = 0

_arena = threading.local()


def _allocate_area(memory: Any, size: int) -> int:
    """argon2's allocate_cbk: this thread's mapping, made (or grown) on first use."""
    area: mmap.mmap | None = getattr(_arena, "area", None)
    if area is None or len(area) < size:
        area = mmap.mmap(-1, size)
        _arena.area = area
        _arena.pointer = ffi.from_buffer(area)
    memory[0] = ffi.cast("uint8_t *", _arena.pointer)
    return 0


def _keep_area(memory: Any, size: int) -> None:
    """argon2's free_cbk: nothing to do, the thread keeps its (already wiped) mapping."""


# C function pointers for the context (kept referenced for the life of the process).
_allocate: Any = ffi.callback("int(uint8_t **, size_t)", _allocate_area, error=_ALLOCATION_ERROR)
_keep: Any = ffi.callback("void(uint8_t *, size_t)", _keep_area)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as error:
        raise InvalidHashError(str(error)) from None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


class ArenaHasher(PasswordHasher):
    """`PasswordHasher` for Argon2id, computing with the calling thread's kept memory."""

    def __init__(
        self, *, time_cost: int, memory_cost: int, parallelism: int, hash_len: int, salt_len: int
    ) -> None:
        super().__init__(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=Type.ID,
        )
        self.parameters = Parameters(
            type=Type.ID,
            version=ARGON2_VERSION,
            salt_len=salt_len,
            hash_len=hash_len,
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
        )
        self._prefix = f"$argon2id$v={ARGON2_VERSION}$m={memory_cost},t={time_cost},p={parallelism}$"

    def _raw(self, secret: bytes, salt: bytes) -> bytes:
        p = self.parameters
        out = ffi.new("uint8_t[]", p.hash_len)
        pwd = ffi.new("uint8_t[]", secret)
        csalt = ffi.new("uint8_t[]", salt)
        context = ffi.new(
            "argon2_context *",
            {
                "out": out,
                "outlen": p.hash_len,
                "pwd": pwd,
                "pwdlen": len(secret),
                "salt": csalt,
                "saltlen": len(salt),
                "secret": ffi.NULL,
                "secretlen": 0,
                "ad": ffi.NULL,
                "adlen": 0,
                "t_cost": p.time_cost,
                "m_cost": p.memory_cost,
                "lanes": p.parallelism,
                "threads": p.parallelism,
                "version": p.version,
                "allocate_cbk": _allocate,
                "free_cbk": _keep,
                "flags": _DEFAULT_FLAGS,
            },
        )
        code = core(context, Type.ID.value)
        if code != _OK:
            raise HashingError(error_to_str(code))
        return bytes(ffi.buffer(out, p.hash_len))

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        secret = password.encode() if isinstance(password, str) else password
        salt = salt if salt is not None else os.urandom(self.parameters.salt_len)
        return self._prefix + _b64encode(salt) + "$" + _b64encode(self._raw(secret, salt))

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        stored = hash.decode("ascii") if isinstance(hash, bytes) else hash
        if extract_parameters(stored) != self.parameters:
            return super().verify(hash, password)
        salt_text, digest_text = stored.rsplit("$", 2)[1:]
        secret = password.encode() if isinstance(password, str) else password
        if not hmac.compare_digest(self._raw(secret, _b64decode(salt_text)), _b64decode(digest_text)):
            raise VerifyMismatchError()
        return True
