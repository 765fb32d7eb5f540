"""README's "First five minutes" block, run unchanged against `make run`: the README cannot rot."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict

import pytest

from devstack.run import ROOT, Ports, wait_ready
from tests.e2e.processes import pids_mentioning

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
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`make run` as a newcomer starts it, on free ports and a temporary data directory."""
    root = tmp_path_factory.mktemp("readme") / "dev"
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
        yield env
    finally:
        # Ctrl-C in the terminal: SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Ports are not checked: on a shared machine any process may reuse a freed port.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pids_mentioning(root):
            time.sleep(0.2)
        assert not pids_mentioning(root), "make run left processes running"


def test_the_readme_block_reaches_me_and_logs_out(make_run: dict[str, str]) -> None:
    env = make_run
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
