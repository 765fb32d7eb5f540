"""Drain N queued emails through the worker against the fake Resend and print emails per second.

    .venv/bin/python bench/email_drain.py [--count 2000] [--concurrency 10] [--latency 0]

Same run, same machine, same fake server (a separate process, so it does not share our GIL):

1. baseline: N raw `resend.Emails.send_async` calls through the worker's sender (same pooled
   SDK client, same concurrency), no queue;
2. the real thing: N `enqueue_email` jobs, then an arq worker (burst mode) renders and sends them.

The ratio (2)/(1) is the cost of the queue, rendering, metrics and bookkeeping. `--latency`
makes the fake answer slowly, like a real provider (~100-300 ms), where concurrency dominates.
Uses REDIS_URL if set, else starts a throwaway redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.fake_resend import DEFAULT_API_KEY  # noqa: E402
from devstack.ports import free_port, wait_for_port  # noqa: E402
from devstack.redis import LocalRedis  # noqa: E402
from services.worker.main import WorkerOptions, create_worker  # noqa: E402
from services.worker.sender import OutgoingEmail, ResendSender  # noqa: E402
from services.worker.templates import TemplateRenderer  # noqa: E402
from shared.email_queue import MagicLinkProps, enqueue_email  # noqa: E402
from shared.redis import create_redis, email_queue_name  # noqa: E402
from shared.settings import Settings, load_settings  # noqa: E402

LINK = "http://localhost:8080/auth/magic#token=bench-token-0123456789abcdef"


async def stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        result: dict[str, Any] = (await client.get(f"{url}/_stats")).json()
        return result


async def reset(url: str, latency: float) -> None:
    async with httpx.AsyncClient() as client:
        await client.post(f"{url}/_reset")
        await client.post(f"{url}/_control", json={"delay_all": latency})


async def baseline(settings: Settings, count: int, concurrency: int) -> float:
    """Raw SDK POSTs of a rendered message, bounded like the worker: no queue, no bookkeeping."""
    sender = ResendSender(settings, max_connections=concurrency)
    await sender.start()
    rendered = TemplateRenderer(settings.product_name).render(
        "magic_link", {"link": LINK, "expires_in_seconds": 900}
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await sender.send(
                OutgoingEmail(
                    message_id=f"b{i}",
                    idempotency_key=f"baseline-{i}-{secrets.token_hex(4)}",
                    template="magic_link",
                    sender=settings.email_from,
                    to=f"user{i}@example.org",
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                )
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    await sender.close()
    return elapsed


async def run(args: argparse.Namespace, redis_url: str, fake_url: str) -> None:
    settings = load_settings(
        env="test",
        service_name="bench",  # no database: the worker has none
        redis_url=redis_url,
        redis_key_prefix=f"bench:{secrets.token_hex(4)}:",
        resend_api_key=DEFAULT_API_KEY,
        resend_api_url=fake_url,
        email_from="BlockBot <no-reply@blockbot.test>",
        worker_concurrency=args.concurrency,
    )
    count = args.count

    await baseline(settings, min(count, 200), args.concurrency)  # warm-up: connections, threads
    await reset(fake_url, args.latency)
    raw_seconds = await baseline(settings, count, args.concurrency)
    raw_rate = count / raw_seconds
    assert (await stats(fake_url))["deliveries"] == count
    await reset(fake_url, args.latency)

    redis = create_redis(settings)
    started = time.perf_counter()
    for start in range(0, count, 200):
        await asyncio.gather(
            *(
                enqueue_email(
                    redis,
                    settings,
                    to=f"user{i}@example.org",
                    props=MagicLinkProps(link=LINK, expires_in_seconds=900),
                )
                for i in range(start, min(start + 200, count))
            )
        )
    enqueue_seconds = time.perf_counter() - started
    assert await redis.zcard(email_queue_name(settings)) == count

    worker = create_worker(
        settings, WorkerOptions(metrics=False, burst=True, handle_signals=False, poll_delay_seconds=0.05)
    )
    started = time.perf_counter()
    try:
        await worker.async_run()
    finally:
        drain_seconds = time.perf_counter() - started
        await worker.close()
    delivered = (await stats(fake_url))["deliveries"]
    left = await redis.zcard(email_queue_name(settings))
    await redis.aclose()

    drain_rate = count / drain_seconds
    print(f"emails: {count}  concurrency: {args.concurrency}  fake latency: {args.latency * 1000:.0f} ms")
    print(f"enqueue:            {count / enqueue_seconds:8.0f} jobs/s   ({enqueue_seconds:.2f} s)")
    print(f"raw SDK baseline:   {raw_rate:8.0f} emails/s ({raw_seconds:.2f} s)")
    print(f"worker drain:       {drain_rate:8.0f} emails/s ({drain_seconds:.2f} s)")
    print(f"drain / baseline:   {drain_rate / raw_rate:8.2f}")
    print(
        f"delivered: {delivered}  left in queue: {left}  jobs complete: {worker.jobs_complete}  "
        f"retried: {worker.jobs_retried}  failed: {worker.jobs_failed}"
    )
    if delivered != count or left:
        raise SystemExit("not every email was delivered exactly once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.0, help="fake Resend response delay, seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "devstack.fake_resend", "--port", str(port), "--no-bodies"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    local_redis: LocalRedis | None = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-redis-")
    try:
        wait_for_port(port)
        fake_url = f"http://127.0.0.1:{port}"
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            local_redis = LocalRedis(Path(tmp.name)).start()
            redis_url = local_redis.url
        asyncio.run(run(args, redis_url, fake_url))
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        if local_redis is not None:
            local_redis.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
