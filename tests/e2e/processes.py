"""Which processes still belong to a stack: its directory in their command line or environment."""

from __future__ import annotations

import os
from pathlib import Path


def pids_mentioning(root: Path) -> list[int]:
    """Processes (other than this one) whose command line or environment names `root`.

    The environment catches what `make run` started (every child inherits DEVSTACK_ROOT); the
    command line catches PostgreSQL and Redis, which are given their data directory."""
    needle = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                if needle in (entry / name).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


def command_line(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return "(gone)"
