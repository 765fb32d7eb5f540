"""Child processes of the dev tools, the tests and the benchmarks: a uvicorn server started the
same way everywhere, and a child stopped the same way everywhere (signal, grace, SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack.paths import ROOT


def start_uvicorn(
    app: str, port: int, env: Mapping[str, str], log: Path, *options: str
) -> subprocess.Popen[bytes]:
    """`uvicorn app` ("services.api.main:app") on 127.0.0.1:`port` from the repository root,
    with exactly the environment `env` and uvicorn's `options`, its output appended to `log`."""
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *options]
    with log.open("ab") as output:  # the child keeps its own descriptor
        return subprocess.Popen(command, cwd=ROOT, env=dict(env), stdout=output, stderr=subprocess.STDOUT)


def stop_process(
    process: subprocess.Popen[bytes],
    *,
    grace: float = 15.0,
    sig: signal.Signals = signal.SIGTERM,
    group: bool = False,
) -> None:
    """Send `sig` to a child (to its process group with `group`, for one started with
    `start_new_session`: its children with it); SIGKILL it if it has not exited within `grace`
    seconds."""
    if group:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        if group:
            with contextlib.suppress(ProcessLookupError):  # it may have exited just now
                os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()
