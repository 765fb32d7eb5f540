"""Stopping a child process the way every tool here does: SIGTERM, a grace period, SIGKILL."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Ask `process` to stop (SIGTERM); kill it if it has not exited within `grace` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
