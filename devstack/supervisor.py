"""Runs the stack's services like a small init: restarts, ordered stop, children tied to us.

- A service that exits on its own is restarted after a backoff (1 s, doubling, at most 30 s;
  back to 1 s once it has run for a while), and the restart is printed; the others keep
  running. Only a service that keeps failing right at start (`MAX_QUICK_FAILURES` in a row)
  stops the stack.
- Each service runs in its own session, so Ctrl-C in the terminal reaches only us; we then stop
  them ourselves: SIGTERM, up to `grace` seconds to finish (the worker's in-flight sends), then
  SIGKILL. SIGINT, SIGTERM and SIGHUP (terminal closed) all mean "stop".
- Each service gets SIGKILL from the kernel if we die without stopping it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

PR_SET_PDEATHSIG = 1
MAX_QUICK_FAILURES = 5
QUICK_SECONDS = 10.0  # a service that ran less than this before exiting "failed at start"
MAX_BACKOFF_SECONDS = 30.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class ProcessSpec:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]

    @property
    def command(self) -> str:
        """As a shell command line (the reference Procfile)."""
        return shlex.join(self.argv)


def die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the supervisor dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None
    pump: threading.Thread | None = None


@dataclass
class Supervisor:
    """Start `specs` in order, keep them running until a stop signal, stop them in reverse."""

    specs: Sequence[ProcessSpec]
    cwd: Path
    out: TextIO
    grace: float = 15.0
    pidfile: Path | None = None  # the services' pids, for `make stop` after a crash of ours
    extra_pids: dict[str, int] = field(default_factory=dict)  # written to the pidfile too
    backoff_base: float = 1.0  # seconds before the first restart (doubling per quick failure)
    _children: list[_Child] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, text: str) -> None:
        with self._lock:
            print(f"devstack | {text}", file=self.out, flush=True)

    def request_stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        self._stop.set()

    def _start(self, child: _Child) -> None:
        process = subprocess.Popen(
            child.spec.argv,
            cwd=self.cwd,
            env=child.spec.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        child.process, child.started, child.restart_at = process, time.monotonic(), None
        child.pump = threading.Thread(target=self._pump, args=(child.spec.name, process), daemon=True)
        child.pump.start()
        self._write_pidfile()

    def _pump(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                print(f"{name:<8}| {line}", file=self.out, flush=True)

    def _write_pidfile(self) -> None:
        if self.pidfile is None:
            return
        pids = {name: pid for name, pid in self.extra_pids.items()}
        pids.update({c.spec.name: c.process.pid for c in self._children if c.process is not None})
        write_pidfile(self.pidfile, pids)

    def run(self, on_started: Callable[[], None] | None = None) -> int:
        """Supervise until a stop signal (0) or a service failing at start repeatedly (1)."""
        # Signal handlers can only be set from the main thread (tests call request_stop instead).
        in_main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self.request_stop) for sig in STOP_SIGNALS} if in_main else {}
        code = 0
        try:
            self._children = [_Child(spec) for spec in self.specs]
            for child in self._children:
                self._start(child)
            if on_started is not None:
                on_started()
            code = self._watch()
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.pidfile is not None:
                self.pidfile.unlink(missing_ok=True)
        return code

    def _watch(self) -> int:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for child in self._children:
                process = child.process
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self.say(f"restarting {child.spec.name}")
                        self._start(child)
                    continue
                if process is None or process.poll() is None:
                    continue
                ran = now - child.started
                child.quick_failures = child.quick_failures + 1 if ran < QUICK_SECONDS else 1
                if child.quick_failures >= MAX_QUICK_FAILURES:
                    self.say(
                        f"{child.spec.name} failed {child.quick_failures} times in a row right after "
                        "starting; stopping the stack"
                    )
                    return 1
                backoff = min(self.backoff_base * 2.0 ** (child.quick_failures - 1), MAX_BACKOFF_SECONDS)
                self.say(
                    f"{child.spec.name} exited with code {process.returncode} after {ran:.1f}s; "
                    f"restarting in {backoff:.1f}s"
                )
                child.restart_at = now + backoff
        return 0

    def stop_all(self) -> None:
        """SIGTERM every service (reverse start order, all at once), SIGKILL what outlives `grace`."""
        running = [c for c in reversed(self._children) if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            self.say(f"stopping {child.spec.name}")
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.spec.name} did not stop within {self.grace:.0f}s; killing it")
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in self._children:
            if child.pump is not None:
                child.pump.join(timeout=2)


def write_pidfile(path: Path, pids: dict[str, int]) -> None:
    """`name pid` lines, ours first: what `make stop` reads to clean up after a killed run."""
    lines = [f"devstack {os.getpid()}", *(f"{name} {pid}" for name, pid in pids.items())]
    path.write_text("\n".join(lines) + "\n")


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
