"""Dotenv files the local stack writes and reads (`.dev/secrets.env`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """Read `KEY="json-escaped value"` lines (the format `write_env_file` writes)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        values[key.strip()] = json.loads(value) if value.startswith('"') else value
    return values


def write_env_file(path: Path, values: Mapping[str, str], header: str) -> None:
    """Write a dotenv file readable by python-dotenv and docker compose; mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {header}"] + [f"{key}={json.dumps(value)}" for key, value in values.items()]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    tmp.replace(path)
