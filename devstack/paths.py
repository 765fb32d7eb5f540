"""Where the repository is (commands run from its root)."""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_from_root(
    args: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root, its output captured as text.

    Never raises on a non-zero exit: the caller reads the return code and decides what the
    output means. `env` replaces the environment; None inherits ours.
    """
    return subprocess.run(
        list(args),
        cwd=ROOT,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def add_root_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """`--root`: the dev stack's data directory, .dev/ or $DEVSTACK_ROOT (`make run`, `make stop`)."""
    parser.add_argument(
        "--root", type=Path, default=Path(os.environ.get("DEVSTACK_ROOT") or ROOT / ".dev"), help=help
    )
