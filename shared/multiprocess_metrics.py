"""Prometheus metrics of a service run as several uvicorn workers (`WEB_CONCURRENCY` > 1).

Chosen: prometheus-client's multiprocess mode, not one scrape target per worker (the workers
share one port, so Prometheus could not tell them apart). Each worker writes its samples to
memory-mapped files in a directory shared by the workers of ONE uvicorn supervisor; `/metrics`,
answered by whichever worker gets the scrape, aggregates them all: counters and histograms
summed over every worker that ever ran (a restarted worker's counts are not lost), the
`livesum` gauges (requests in flight, pool connections) summed over the live ones. One target
per service, whatever the worker count. A single-process service (the default, and the tests)
does not use it at all.

The directory must be chosen before `prometheus_client` is first imported, so each service
entry point (`services/<name>/main.py`) calls `enable_in_uvicorn_workers()` before anything
else. It is `$TMPDIR/blockbot-metrics-<supervisor pid>-<its start time>`: fresh for each run of
the supervisor (a container restart reuses pid 1, not its start time); directories of
supervisors no longer running are removed. An operator may set PROMETHEUS_MULTIPROC_DIR
instead (and must then empty it before each start, as the prometheus-client docs say).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported for real only after the multiprocess directory is chosen
    from prometheus_client import CollectorRegistry

ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "blockbot-metrics-"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot) from /proc, or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _remove_stale(base: Path) -> None:
    for directory in base.glob(_PREFIX + "*"):
        pid, _, started = directory.name.removeprefix(_PREFIX).partition("-")
        if not pid.isdigit() or _start_time(int(pid)) != started:
            shutil.rmtree(directory, ignore_errors=True)


def enable_in_uvicorn_workers() -> bool:
    """Switch to multiprocess mode if this process is a worker spawned by a supervisor.

    Returns whether multiprocess mode is on. Call it before `prometheus_client` is imported.
    """
    if os.environ.get(ENV):
        return True
    if multiprocessing.parent_process() is None:
        return False
    supervisor = os.getppid()
    started = _start_time(supervisor)
    if started is None:
        return False
    base = Path(tempfile.gettempdir())
    directory = base / f"{_PREFIX}{supervisor}-{started}"
    if not directory.exists():
        _remove_stale(base)
        directory.mkdir(mode=0o700, exist_ok=True)
    os.environ[ENV] = str(directory)
    return True


def enabled() -> bool:
    """Whether this process records its metrics in multiprocess mode."""
    return bool(os.environ.get(ENV))


def process_exited() -> None:
    """Drop this worker's live gauges from the aggregate (call when the worker shuts down)."""
    if enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def exposition(registry: CollectorRegistry | None = None) -> bytes:
    """The registry (default: prometheus_client's) in the Prometheus text format; in
    multiprocess mode, the aggregate of every worker of this supervisor instead.

    Here, not in shared/metrics.py, so that a process rendering its metrics (the email worker)
    does not register the HTTP services' metrics by importing it.
    """
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    if enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(REGISTRY if registry is None else registry)
