"""`make env`: a ready Docker Compose `.env` with fresh secrets, without the dev toolchain.

    python3 -m devstack.secrets --env-file .env    # what `make env` runs
    python3 -m devstack.secrets                    # print fresh secret lines only

With --env-file, the file is created from .env.example when missing; then every secret whose
value is empty or still a placeholder (`change-me...`) gets a freshly generated value, in place:
no duplicate keys, values an operator already set are kept, so running it again is harmless.
Standard library only, so any Python 3.11+ runs it before anything is installed. Passwords are
URL-safe (they go into database and Redis URLs); the JWT signing key is an Ed25519 seed, which
is 32 random bytes written as unpadded base64url (the format services/auth/keys.py reads).
"""

from __future__ import annotations

import argparse
import base64
import secrets
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORDS = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "AUTH_DB_PASSWORD",
    "API_DB_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "API_KEY_HASH_SECRET",
)
PLACEHOLDER = "change-me"


def generate() -> dict[str, str]:
    """A fresh value for every secret a Compose deployment needs."""
    values = {name: secrets.token_urlsafe(32) for name in PASSWORDS}
    seed = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    values["JWT_PRIVATE_KEYS"] = seed
    # An AES-256 key of the TOTP secrets at rest: 32 random bytes as unpadded base64url.
    values["TOTP_ENCRYPTION_KEYS"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return values


def _is_placeholder(value: str) -> bool:
    bare = value.strip().strip("\"'")
    return not bare or bare.startswith(PLACEHOLDER)


def fill(text: str, values: dict[str, str]) -> str:
    """`text` (an env file) with each placeholder secret replaced; missing secrets appended."""
    lines, seen = [], set()
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in values:
            seen.add(key)
            if _is_placeholder(value):
                line = f"{key}={values[key]}"
        lines.append(line)
    lines += [f"{key}={value}" for key, value in values.items() if key not in seen]
    return "\n".join(lines) + "\n"


def write_env_file(path: Path, template: Path = ROOT / ".env.example") -> list[str]:
    """Create or complete `path`; returns the names of the secrets it generated."""
    if not path.exists():
        shutil.copyfile(template, path)
    path.chmod(0o600)
    before = path.read_text()
    after = fill(before, generate())
    path.write_text(after)
    return sorted(set(after.splitlines()) - set(before.splitlines()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, help="create or complete this env file in place")
    args = parser.parse_args(argv)
    if args.env_file is None:
        for key, value in generate().items():
            print(f"{key}={value}")
        return 0
    changed = write_env_file(args.env_file)
    names = [line.split("=", 1)[0] for line in changed]
    print(f"{args.env_file}: " + (f"generated {', '.join(names)}" if names else "every secret already set"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
