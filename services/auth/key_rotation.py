"""Signing-key rotation without logging anyone out: edits JWT_PRIVATE_KEYS in an env file.

    python -m services.auth.key_rotation status  --env-file .env
    python -m services.auth.key_rotation add     --env-file .env   # staged: published, not signing
    python -m services.auth.key_rotation promote --env-file .env   # the staged key signs
    python -m services.auth.key_rotation retire  --env-file .env   # drop the keys before it
    python -m services.auth.key_rotation emergency --env-file .env # a key is compromised

Each step is followed by a restart of the auth service (it reads JWT_PRIVATE_KEYS at start-up);
the api needs none: it revalidates the JWKS every `JWKS_REVALIDATE_SECONDS` (10 s) and when a
token names an unknown kid. Between `add` and `promote` wait for the JWKS caches (5 minutes, for
verifiers other than the api), so every verifier knows the new key before a token carries it;
`retire` refuses until the access-token lifetime (plus leeway) has passed since `promote`
(JWT_KEYS_PROMOTED_AT in the same file), because until then tokens signed by the old key are
still valid. Private keys are never
printed; only their kids (public thumbprints).

`emergency` is for a compromised key: every key (signing, published, staged) is replaced by
one new signing key at once. Once auth restarts, the api refuses every token signed before
within `JWKS_REVALIDATE_SECONDS` (people refresh with their cookies, which are not signed), and
tokens forged with the stolen key with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services.auth.keys import STAGED_PREFIX, generate_seed, parse_private_key, signing_key
from shared.settings import Settings

VARIABLE = "JWT_PRIVATE_KEYS"
PROMOTED_AT = "JWT_KEYS_PROMOTED_AT"


class RotationError(Exception):
    """A step that cannot be taken now; the message says why and what to do."""


@dataclass(frozen=True)
class EnvFile:
    """A dotenv file: its lines, and the values this tool reads and writes."""

    path: Path
    lines: list[str]

    @classmethod
    def read(cls, path: Path) -> EnvFile:
        if not path.exists():
            raise RotationError(f"{path} does not exist")
        return cls(path, path.read_text().splitlines())

    def get(self, name: str) -> str | None:
        for line in self.lines:
            key, sep, value = line.partition("=")
            if sep and key.strip() == name:
                return _unquote(value.strip())
        return None

    def set(self, name: str, value: str) -> None:
        rendered = f"{name}={json.dumps(value)}"
        for index, line in enumerate(self.lines):
            key, sep, _ = line.partition("=")
            if sep and key.strip() == name:
                self.lines[index] = rendered
                return
        self.lines.append(rendered)

    def write(self) -> None:
        """Replace the file atomically, readable by its owner only (it holds private keys)."""
        tmp = self.path.with_name(self.path.name + ".rotating")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(self.lines) + "\n")
        tmp.replace(self.path)


def _unquote(value: str) -> str:
    if value.startswith('"'):
        decoded = json.loads(value)
        return str(decoded)
    if value.startswith("'") and value.endswith("'") and len(value) >= 2:
        return value[1:-1]
    return value


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def kid_of(entry: str) -> str:
    """The public kid of one JWT_PRIVATE_KEYS entry (staged or not)."""
    try:
        return signing_key(parse_private_key(entry.removeprefix(STAGED_PREFIX))).kid
    except (ValueError, TypeError):
        raise RotationError(f"{VARIABLE} holds an entry that is not an Ed25519 key") from None


def describe(entries: list[str]) -> list[str]:
    """One line per key: its kid and its part (staged, signing, published)."""
    active = [e for e in entries if not e.startswith(STAGED_PREFIX)]
    lines = []
    for entry in entries:
        if entry.startswith(STAGED_PREFIX):
            part = "staged (published, not signing)"
        elif active and entry == active[-1]:
            part = "signing"
        else:
            part = "published (verifies tokens until retired)"
        lines.append(f"{kid_of(entry)}  {part}")
    return lines


def add(entries: list[str]) -> tuple[list[str], str]:
    """Stage a new key; one rotation at a time."""
    if any(e.startswith(STAGED_PREFIX) for e in entries):
        raise RotationError("a staged key exists already: promote it first")
    if not entries:
        raise RotationError(f"{VARIABLE} is empty: generate a first key with `make secrets`")
    seed = generate_seed()
    return [*entries, STAGED_PREFIX + seed], kid_of(seed)


def promote(entries: list[str]) -> tuple[list[str], str]:
    """The staged key becomes the newest (signing) key."""
    staged = [e for e in entries if e.startswith(STAGED_PREFIX)]
    if len(staged) != 1:
        raise RotationError("no staged key to promote: run `add` first")
    key = staged[0].removeprefix(STAGED_PREFIX)
    return [e for e in entries if e != staged[0]] + [key], kid_of(key)


def retire(
    entries: list[str], *, promoted_at: float | None, now: float, wait_seconds: int, force: bool
) -> tuple[list[str], list[str]]:
    """Drop every key older than the signing one, once their tokens have expired."""
    staged = [e for e in entries if e.startswith(STAGED_PREFIX)]
    active = [e for e in entries if not e.startswith(STAGED_PREFIX)]
    if len(active) < 2:
        raise RotationError("nothing to retire: only the signing key is left")
    if not force:
        if promoted_at is None:
            raise RotationError(
                f"{PROMOTED_AT} is not in the file, so the promotion time is unknown: retire "
                f"with --force once {wait_seconds} s have passed since the promotion"
            )
        remaining = int(promoted_at + wait_seconds - now)
        if remaining > 0:
            raise RotationError(
                f"tokens signed by the old key may still be valid: retire in {remaining} s "
                f"(access-token lifetime plus leeway after the promotion)"
            )
    retired = [kid_of(e) for e in active[:-1]]
    return [active[-1], *staged], retired


def emergency(entries: list[str]) -> tuple[list[str], list[str], str]:
    """Replace every key with one new signing key: the keys dropped and the new kid."""
    dropped = [kid_of(e) for e in entries]
    seed = generate_seed()
    return [seed], dropped, kid_of(seed)


def _default(field: str) -> int:
    return int(Settings.model_fields[field].default)


def run(step: str, path: Path, *, force: bool = False, now: float | None = None) -> list[str]:
    """Apply one step to the env file; returns the lines to print."""
    env = EnvFile.read(path)
    entries = _split(env.get(VARIABLE))
    lifetime = int(env.get("ACCESS_TOKEN_TTL_SECONDS") or _default("access_token_ttl_seconds"))
    leeway = int(env.get("JWT_LEEWAY_SECONDS") or _default("jwt_leeway_seconds"))
    moment = time.time() if now is None else now
    restart = "now restart the auth service (Compose: docker compose up -d auth; make run: restart it)"
    if step == "status":
        return describe(entries) or [f"{VARIABLE} is empty"]
    if step == "add":
        entries, kid = add(entries)
        env.set(VARIABLE, ",".join(entries))
        env.write()
        return [
            f"staged key {kid}: published, not signing",
            restart,
            "promote after the JWKS caches refreshed (5 minutes)",
        ]
    if step == "promote":
        entries, kid = promote(entries)
        env.set(VARIABLE, ",".join(entries))
        env.set(PROMOTED_AT, str(int(moment)))
        env.write()
        return [f"key {kid} signs new tokens", restart, f"retire the old key after {lifetime + leeway} s"]
    if step == "retire":
        promoted = env.get(PROMOTED_AT)
        entries, retired = retire(
            entries,
            promoted_at=float(promoted) if promoted else None,
            now=moment,
            wait_seconds=lifetime + leeway,
            force=force,
        )
        env.set(VARIABLE, ",".join(entries))
        env.write()
        return [f"retired {kid}" for kid in retired] + [restart]
    if step == "emergency":
        entries, dropped, kid = emergency(entries)
        env.set(VARIABLE, ",".join(entries))
        env.set(PROMOTED_AT, str(int(moment)))
        env.write()
        return [
            *(f"retired {old}" for old in dropped),
            f"key {kid} signs new tokens",
            restart,
            "every token signed before is refused once the api revalidates its JWKS (seconds)",
        ]
    raise RotationError(f"unknown step {step!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.auth.key_rotation", description="Rotate the access-token signing key."
    )
    parser.add_argument("step", choices=("status", "add", "promote", "retire", "emergency"))
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        help="the file holding JWT_PRIVATE_KEYS (Compose: .env; make run: .dev/secrets.env)",
    )
    parser.add_argument(
        "--force", action="store_true", help="retire without checking the time since the promotion"
    )
    args = parser.parse_args(argv)
    try:
        for line in run(args.step, args.env_file, force=args.force):
            print(line)
    except RotationError as error:
        print(f"key rotation: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
