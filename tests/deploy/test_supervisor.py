"""`make run` as a supervisor: crashed services come back, signals stop everything in order,
children die with it, and `make stop` cleans up after a killed run."""

from __future__ import annotations

import io
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from devstack.ports import port_in_use
from devstack.readiness import readiness
from devstack.run import LocalStack, Ports
from devstack.stop import read_pids, stop
from devstack.supervisor import ProcessSpec, Supervisor
from tests.e2e.processes import STACK_ENV, pids_using

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]
FAILING = [sys.executable, "-c", "raise SystemExit(3)"]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not {what} within {timeout} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
    return ") Z " not in stat  # a zombie is dead


def test_a_killed_service_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    out = io.StringIO()
    specs = [ProcessSpec("one", SLEEPER, dict(os.environ)), ProcessSpec("two", SLEEPER, dict(os.environ))]
    pidfile = tmp_path / "pids"
    supervisor = Supervisor(specs, cwd=tmp_path, out=out, grace=5, pidfile=pidfile, backoff_base=0.1)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(supervisor.run()))
    runner.start()
    try:
        wait_until(lambda: len(read_pids(pidfile)) == 3, 30, "started")
        first = read_pids(pidfile)
        os.kill(first["one"], signal.SIGKILL)
        wait_until(lambda: read_pids(pidfile).get("one") not in (None, first["one"]), 30, "restarted")
        assert read_pids(pidfile)["two"] == first["two"] and alive(first["two"])
    finally:
        supervisor.request_stop()
        runner.join(30)
    assert result == [0]
    assert "one exited with code -9" in out.getvalue() and "restarting one" in out.getvalue()
    assert not pidfile.exists()
    assert not any(alive(pid) for name, pid in first.items() if name != "devstack")


def test_a_service_failing_at_every_start_stops_the_stack(tmp_path: Path) -> None:
    out = io.StringIO()
    specs = [
        ProcessSpec("sleeper", SLEEPER, dict(os.environ)),
        ProcessSpec("broken", FAILING, dict(os.environ)),
    ]
    supervisor = Supervisor(specs, cwd=tmp_path, out=out, grace=5, backoff_base=0.05)
    assert supervisor.run() == 1
    text = out.getvalue()
    assert text.count("broken exited with code 3") == 4
    assert "broken failed 5 times in a row" in text
    assert "stopping sleeper" in text


@pytest.fixture
def stack_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bbsup-") as directory:
        yield Path(directory)


def start_stack(root: Path) -> LocalStack:
    env = {**STACK_ENV, "DATABASE_URL": "", "REDIS_URL": ""}
    stack = LocalStack(root / "stack", ports=Ports.free(), env=env).start()
    stack.wait_ready(timeout=240)
    return stack


def test_make_run_restarts_killed_services_and_sighup_stops_everything(stack_root: Path) -> None:
    stack = start_stack(stack_root)
    try:
        pids = read_pids(stack.root / "devstack.pids")
        for name in ("api", "worker"):
            os.kill(pids[name], signal.SIGKILL)
            wait_until(
                lambda name=name: read_pids(stack.root / "devstack.pids").get(name) not in (None, pids[name]),
                60,
                f"{name} restarted",
            )
        wait_until(lambda: all(readiness(stack.ports).values()), 120, "ready again")
        assert stack.alive()
        assert stack.process is not None
        stack.process.send_signal(signal.SIGHUP)  # the terminal was closed
        assert stack.process.wait(timeout=90) == 0, stack.log_tail()
    finally:
        stack.stop()
    log = stack.log_tail(200_000)
    assert "api exited with code -9" in log and "worker exited with code -9" in log
    # Services first, Redis and PostgreSQL last.
    assert log.index("stopping worker") < log.index("stopping Redis") < log.index("stopping PostgreSQL")
    assert not pids_using(stack_root), stack.log_tail()
    assert not [port for port in asdict(stack.ports).values() if port_in_use(port)]


def test_make_stop_cleans_up_after_a_killed_make_run(stack_root: Path) -> None:
    stack = start_stack(stack_root)
    try:
        pids = read_pids(stack.root / "devstack.pids")
        assert stack.process is not None
        stack.process.send_signal(signal.SIGKILL)  # make run itself dies, nothing stops anything
        stack.process.wait()
        # Its services die with it; Redis and PostgreSQL are left behind...
        for name in ("auth", "api", "worker", "traefik"):
            wait_until(lambda name=name: not alive(pids[name]), 30, f"{name} gone")
        assert pids_using(stack_root)
        # ...until `make stop`.
        done = stop(stack.root, grace=10)
        assert "stopped PostgreSQL" in done
    finally:
        stack.stop()
    wait_until(lambda: not pids_using(stack_root), 30, "all gone")
    assert not [port for port in asdict(stack.ports).values() if port_in_use(port)]


def test_ctrl_c_with_100_queued_emails_sends_none_twice(stack_root: Path) -> None:
    """Ctrl-C stops the services first, the worker finishing its in-flight sends, then Redis."""
    import asyncio

    from devstack.fake_resend import FakeResend
    from shared.email_queue import MagicLinkProps, enqueue_email
    from shared.redis import create_redis, email_queue_name
    from shared.settings import load_settings

    with FakeResend() as fake:
        fake.delay_next(1000, seconds=0.05)  # slow sends: some are in flight at the Ctrl-C
        env = {
            **STACK_ENV,
            "DATABASE_URL": "",
            "REDIS_URL": "",
            "RESEND_API_KEY": fake.api_key,
            "RESEND_API_URL": fake.url,
        }
        stack = LocalStack(stack_root / "stack", ports=Ports.free(), env=env).start()
        settings = load_settings(
            env="test", service_name="probe", redis_url=f"redis://127.0.0.1:{stack.ports.redis}/0"
        )

        async def enqueue() -> None:
            redis = create_redis(settings)
            try:
                for _ in range(100):
                    props = MagicLinkProps(link="http://localhost/auth/magic#token=t", expires_in_seconds=900)
                    await enqueue_email(redis, settings, to="ada@example.org", props=props)
            finally:
                await redis.aclose()

        async def queued() -> int:
            redis = create_redis(settings)
            try:
                return int(await redis.zcard(email_queue_name(settings)))
            finally:
                await redis.aclose()

        try:
            stack.wait_ready(timeout=240)
            asyncio.run(enqueue())
            assert fake.wait_for(requests=5, timeout=120)
            assert stack.process is not None
            os.killpg(stack.process.pid, signal.SIGINT)  # the terminal's Ctrl-C
            assert stack.process.wait(timeout=120) in (0, 130), stack.log_tail()
            sent_before = len(fake.requests)
            stack = LocalStack(stack_root / "stack", ports=stack.ports, env=env).start()
            stack.wait_ready(timeout=240)
            wait_until(lambda: asyncio.run(queued()) == 0 and len(fake.deliveries) >= 100, 240, "drained")
        finally:
            stack.stop()
        keys = [r.idempotency_key for r in fake.requests]
        assert len(fake.deliveries) == 100
        assert len(keys) == len(set(keys)) == 100, (
            f"{len(keys) - len(set(keys))} sent again after the restart ({sent_before} before the stop)"
        )
