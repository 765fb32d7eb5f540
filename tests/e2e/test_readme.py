"""README's "First five minutes" block, run unchanged against `make run`: the README cannot rot."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from devstack.processes import stop_process
from devstack.run import ROOT, Ports, wait_ready
from tests.e2e.processes import command_line, pids_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = ROOT / "README.md"
SECTION = "## First five minutes"


def first_five_minutes_block() -> str:
    """The first ```sh block after the section heading, exactly as written."""
    text = README.read_text()
    assert SECTION in text, f"README has no {SECTION!r} section"
    match = re.search(r"```sh\n(.*?)```", text.split(SECTION, 1)[1], re.DOTALL)
    assert match, f"no ```sh block in {SECTION!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def make_run() -> Iterator[tuple[dict[str, str], Path]]:
    """`make run` as a newcomer starts it, on free ports and a temporary data directory."""
    # Not under pytest's basetemp: concurrent pytest sessions of the same user reset its mode to
    # 0700, which the embedded PostgreSQL's own system user could then no longer traverse.
    with tempfile.TemporaryDirectory(prefix="bbreadme-") as directory:
        yield from _make_run(Path(directory) / "dev")


def _make_run(root: Path) -> Iterator[tuple[dict[str, str], Path]]:
    ports = Ports.free()
    env = {
        **os.environ,
        "DEVSTACK_ROOT": str(root),
        **{f"DEVSTACK_{name.upper()}_PORT": str(port) for name, port in asdict(ports).items()},
        # Our own embedded servers, never ones the caller's environment points at.
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "BLOCKBOT_PG_DURABLE": "0",
    }
    log_path = root.parent / "make-run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_ready(ports, timeout=240, alive=lambda: process.poll() is None)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(f"{error}\n{log_path.read_text(errors='replace')[-4000:]}") from None
        yield env, log_path
    finally:
        # Ctrl-C in the terminal: SIGINT to the whole foreground process group.
        stop_process(process, grace=60, sig=signal.SIGINT, group=True)
        # Ports are not checked: on a shared machine any process may reuse a freed port.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and pids_mentioning(root):
            time.sleep(0.2)
        leftovers = {pid: command_line(pid) for pid in pids_mentioning(root)}
        for pid in leftovers:  # never leave them running, even when the test fails
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        assert not leftovers, f"make run left processes running: {leftovers}"


def test_make_run_shows_its_banner_without_probe_noise(make_run: tuple[dict[str, str], Path]) -> None:
    env, log_path = make_run
    deadline = time.monotonic() + 60
    while "BlockBot core is ready" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = log_path.read_text(errors="replace")
    assert "BlockBot core is ready" in log, log[-3000:]
    admin_url = f"postgresql://postgres@127.0.0.1:{env['DEVSTACK_POSTGRES_PORT']}/blockbot"
    assert f"PostgreSQL (admin)  {admin_url}" in log
    # Routes are probed only once their service answers: no 502 stream while it starts (there
    # were 40-70 lines), a few 404 lines at most (make run's probes and this test's).
    probes = [line for line in log.splitlines() if "__devstack_probe__" in line]
    assert not [line for line in probes if '" 502 ' in line], probes
    assert len(probes) <= 8, probes
    # The api starting before auth is normal, not a warning.
    assert "JWKS fetch failed" not in log


def test_the_readme_block_reaches_me_and_logs_out(make_run: tuple[dict[str, str], Path]) -> None:
    env, _ = make_run
    block = first_five_minutes_block()
    # The commands follow the port variable, so they can run unchanged against this stack.
    assert "${DEVSTACK_HTTP_PORT:-8080}" in block
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout
    assert result.returncode == 0, f"stdout:\n{output}\nstderr:\n{result.stderr}"
    lines = [line for line in output.splitlines() if line.strip()]
    assert json.loads(lines[0]) == {"status": "verification_sent"}
    assert re.fullmatch(r"token: [A-Za-z0-9_\-]{20,}", lines[1]), lines[1]
    me = json.loads(lines[2])
    assert me["user"]["email"].startswith("ada-") and me["org"]["name"] == "Engines"
    assert lines[-1] == "204"
    assert len(lines) == 4, output
