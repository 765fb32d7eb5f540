"""The worker as a real process (`python -m services.worker`): SIGKILL mid-send and SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from devstack.fake_resend import FakeResend
from devstack.ports import free_port
from shared.email_queue import MagicLinkProps, enqueue_email
from shared.redis import email_queue_name
from shared.settings import Settings
from tests.worker.helpers import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LINK = "http://localhost:8080/auth/magic#token=proc-secret-token"


def start_worker(settings: Settings, log: Path, metrics_port: int) -> subprocess.Popen[bytes]:
    # No DATABASE_URL at all (not even an inherited one): the worker runs without a database.
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "ENV": "test",
        "SERVICE_NAME": "worker",
        "REDIS_URL": str(settings.redis_url),
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "RESEND_API_KEY": settings.resend_api_key.get_secret_value() if settings.resend_api_key else "",
        "RESEND_API_URL": str(settings.resend_api_url),
        "EMAIL_FROM": settings.email_from,
        "EMAIL_SEND_TIMEOUT_SECONDS": str(settings.email_send_timeout_seconds),
        "WORKER_METRICS_PORT": str(metrics_port),
        "OTEL_TRACES_EXPORTER": "none",
    }
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "services.worker"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
    )


# How long a worker process may take to start and act: waits end as soon as it does, and a
# loaded machine (the suite runs beside others on 2 cores) may need far more than a quiet one.
STARTUP_SECONDS = 120


async def test_worker_killed_mid_send_delivers_exactly_once_after_restart(
    worker_settings, producer, fake_resend: FakeResend, tmp_path: Path
) -> None:
    # A short send timeout keeps arq's in-progress marker (job timeout + 10 s) short.
    settings = worker_settings(email_send_timeout_seconds=2.0)
    redis = producer(settings)
    fake_resend.delay_next(1, 4.0)  # the provider accepts the message, then is slow to answer
    message_id = await enqueue_email(
        redis,
        settings,
        to="ada@example.org",
        props=MagicLinkProps(link=LINK, expires_in_seconds=900),
    )
    log = tmp_path / "worker.log"

    first = start_worker(settings, log, free_port())
    try:
        sent = await asyncio.to_thread(fake_resend.wait_for, requests=1, timeout=STARTUP_SECONDS)
        assert sent, log.read_text()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert len(fake_resend.deliveries) == 1
    assert await redis.zcard(email_queue_name(settings)) == 1  # the job is not lost

    second = start_worker(settings, log, free_port())
    try:

        async def queue_empty() -> bool:
            return bool(await redis.zcard(email_queue_name(settings)) == 0)

        await wait_until(queue_empty, STARTUP_SECONDS, "the restarted worker to finish the job")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)

    assert len(fake_resend.deliveries) == 1, "delivered twice"
    requests = fake_resend.requests
    assert {r.idempotency_key for r in requests} == {f"email-{message_id}"}
    assert requests[0].outcome == "delivered"
    assert requests[-1].outcome == "replayed"  # same key, same answer, no second delivery
    assert "proc-secret-token" not in log.read_text()


async def test_sigterm_lets_the_in_flight_job_finish(
    worker_settings, producer, fake_resend: FakeResend, tmp_path: Path
) -> None:
    settings = worker_settings()
    redis = producer(settings)
    port = free_port()
    log = tmp_path / "worker.log"
    proc = start_worker(settings, log, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:

            async def healthy() -> bool:
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(healthy, STARTUP_SECONDS, "the worker's /health")
            metrics = (await client.get("/metrics")).text
            assert "email_queue_depth" in metrics
            # Only the worker's own series: no zero-valued HTTP or pool series of the web services.
            assert "http_requests" not in metrics and "db_pool_connections" not in metrics

        fake_resend.delay_next(1, 2.0)
        await enqueue_email(
            redis,
            settings,
            to="ada@example.org",
            props=MagicLinkProps(link=LINK, expires_in_seconds=900),
        )
        sent = await asyncio.to_thread(fake_resend.wait_for, requests=1, timeout=STARTUP_SECONDS)
        assert sent, log.read_text()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert code == 0, log.read_text()
    assert [r.outcome for r in fake_resend.requests] == ["delivered"]  # finished, not cut and retried
    assert await redis.zcard(email_queue_name(settings)) == 0
    events = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "email sent" for e in events)
    assert any(e.get("event") == "email worker stopped" for e in events)


def run_worker_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.worker ARGS` to completion, its output captured."""
    command = [sys.executable, "-m", "services.worker", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_worker_starts_in_production_without_a_database_url(worker_settings, tmp_path: Path) -> None:
    """compose gives the worker no DATABASE_URL (least privilege): production settings must load.

    `dead-letter` only reads Redis, so it proves start-up without running a worker; without
    RESEND_API_KEY the worker must refuse (exit 2) naming the variable, never mentioning a
    database."""
    settings = worker_settings()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "ENV": "production",
        "SERVICE_NAME": "worker",
        "REDIS_URL": str(settings.redis_url),
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "APP_BASE_URL": "https://app.example.org",
        "COOKIE_SECURE": "true",
        "EMAIL_FROM": "BlockBot <no-reply@blockbot.example.org>",
        "RESEND_API_KEY": "re_test_key",
        "OTEL_TRACES_EXPORTER": "none",
    }
    ok = run_worker_command(env, "dead-letter", "--limit", "1")
    assert ok.returncode == 0, ok.stderr
    assert "DATABASE_URL" not in ok.stderr

    # The worker itself refuses to start without it (dead-letter only reads Redis, so it does not).
    env.pop("RESEND_API_KEY")
    refused = run_worker_command(env)
    assert refused.returncode == 2
    assert "RESEND_API_KEY" in refused.stderr and "DATABASE_URL" not in refused.stderr
