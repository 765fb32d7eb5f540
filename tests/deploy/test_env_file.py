"""`make env` (devstack/secrets.py): a ready Compose `.env` from plain python3 (finding 2 of issue 11)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.compose_check import compose_binary
from devstack.secrets import PASSWORDS, fill
from services.auth.keys import parse_private_key
from shared.access_tokens import b64url_decode

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def make_env(path: Path) -> subprocess.CompletedProcess[str]:
    # -S -E: no site-packages, no PYTHON* variables: the standard library is all it may use.
    return subprocess.run(
        [sys.executable, "-S", "-E", "-m", "devstack.secrets", "--env-file", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def values(path: Path) -> dict[str, str]:
    keys = [
        line.split("=", 1) for line in path.read_text().splitlines() if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    ]
    names = [key for key, _ in keys]
    assert len(names) == len(set(names)), "duplicate keys"
    return {key: value for key, value in keys}


def test_creates_a_ready_env_file_without_the_toolchain(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    result = make_env(env)
    assert result.returncode == 0, result.stderr
    found = values(env)
    assert not [key for key, value in found.items() if value.startswith("change-me")]
    for name in (*PASSWORDS, "JWT_PRIVATE_KEYS"):
        assert len(found[name]) >= 40, name
    parse_private_key(found["JWT_PRIVATE_KEYS"])  # the auth service accepts the key
    assert len(b64url_decode(found["TOTP_ENCRYPTION_KEYS"])) == 32  # an AES-256 key, as auth reads it
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    # Compose accepts the file as it is (no echoed make commands, nothing to delete by hand).
    config = subprocess.run(
        [
            str(compose_binary()),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env),
            "-f",
            "compose.yaml",
            "config",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
    )
    assert config.returncode == 0, config.stderr


def test_running_again_keeps_what_is_set_and_fills_only_placeholders(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    assert make_env(env).returncode == 0
    first = values(env)
    env.write_text(
        env.read_text().replace(f"REDIS_PASSWORD={first['REDIS_PASSWORD']}", "REDIS_PASSWORD=change-me-redis")
    )
    assert make_env(env).returncode == 0
    second = values(env)
    assert second["REDIS_PASSWORD"] not in (first["REDIS_PASSWORD"], "change-me-redis")
    assert {k: v for k, v in second.items() if k != "REDIS_PASSWORD"} == {
        k: v for k, v in first.items() if k != "REDIS_PASSWORD"
    }


def test_fill_appends_missing_secrets_once() -> None:
    text = fill("# comment\nPOSTGRES_PASSWORD=kept\n", {"POSTGRES_PASSWORD": "new", "REDIS_PASSWORD": "r"})
    assert text == "# comment\nPOSTGRES_PASSWORD=kept\nREDIS_PASSWORD=r\n"
