"""Helpers of the operations tests: the admin CLI as a subprocess, and the deployment's public keys."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from services.auth.keys import KeyRing
from shared.access_tokens import b64url_encode, raw_public_bytes

ROOT = Path(__file__).resolve().parents[2]


FAST_HASHING = {"ARGON2_MEMORY_KIB": "8192", "ARGON2_TIME_COST": "1", "ARGON2_PARALLELISM": "1"}


@dataclass(frozen=True)
class AdminCli:
    """Runs `python -m services.admin` as the operator would, with the migrate job's URL."""

    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.admin", *args],
            cwd=ROOT,
            env={**os.environ, **self.env, **env},
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    async def __call__(
        self, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.run, *args, stdin=stdin, **env)


def public_keys_of(keyring: KeyRing) -> list[str]:
    return [b64url_encode(raw_public_bytes(key.public_key)) for key in keyring.keys]
