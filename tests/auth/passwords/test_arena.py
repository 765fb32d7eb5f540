"""Argon2id with the hashing thread's kept memory: the same hashes as argon2-cffi, both ways,
and the memory really is kept (one mapping per thread, reused by the next hash)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import hash_secret

from services.auth import argon2_arena
from services.auth.argon2_arena import ArenaHasher


def params() -> dict[str, Any]:
    return {"time_cost": 1, "memory_cost": 8192, "parallelism": 2, "hash_len": 32, "salt_len": 16}


def test_hashes_are_argon2_cffis_byte_for_byte_and_verify_both_ways():
    arena = ArenaHasher(**params())
    salt = bytes(range(16))
    expected = hash_secret(b"correct horse", salt, 1, 8192, 2, 32, Type.ID).decode()
    assert arena.hash("correct horse", salt=salt) == expected
    library = PasswordHasher(**params())
    assert library.verify(arena.hash("correct horse"), "correct horse")
    assert arena.verify(library.hash("correct horse"), "correct horse")
    with pytest.raises(VerifyMismatchError):
        arena.verify(arena.hash("correct horse"), "correct horsf")
    # Another parameter set (an older hash) is verified by argon2-cffi itself.
    older = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1).hash("correct horse")
    assert arena.verify(older, "correct horse")
    assert arena.check_needs_rehash(older)
    assert not arena.check_needs_rehash(arena.hash("x"))
    # Malformed: refused as argon2-cffi refuses it (Passwords.verify answers False to both).
    with pytest.raises(InvalidHashError):
        arena.verify("$argon2id$v=19$m=8192,t=1,p=2$" + "!" * 22 + "$" + "?" * 43, "x")
    with pytest.raises(VerificationError):
        arena.verify("$argon2id$v=19$m=8192,t=1,p=2$!!!!$????", "x")


def test_each_thread_keeps_one_mapping_and_concurrent_hashes_stay_correct():
    arena = ArenaHasher(**params())
    library = PasswordHasher(**params())
    areas: dict[str, list[int]] = {}
    failures: list[str] = []

    def work(name: str) -> None:
        for i in range(4):
            password = f"{name}-{i}"
            if not library.verify(arena.hash(password), password):
                failures.append(password)
            areas.setdefault(name, []).append(id(argon2_arena._arena.area))

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(len(set(ids)) == 1 for ids in areas.values())  # kept across a thread's hashes
    assert len({ids[0] for ids in areas.values()}) == 3  # one per thread
