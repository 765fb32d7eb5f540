"""Build and run the email worker: arq on the email queue, plus its metrics port.

`python -m services.worker` runs it (the metrics/health server on `WORKER_METRICS_PORT` is
started by the worker's own start-up hook, so `arq services.worker.main.WorkerSettings` behaves
the same). `python -m services.worker dead-letter` prints the dead-lettered emails.

Shutdown on SIGTERM/SIGINT: the worker stops taking jobs, lets in-flight sends finish for up to
one job timeout, then cancels what is left; a cancelled job stays in the queue and is run again
(by this worker's successor), and its idempotency key prevents a second delivery. A worker that
dies without warning (SIGKILL, OOM) leaves its job in the queue too: arq runs it again once the
job's in-progress marker expires (job timeout + 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from dataclasses import dataclass, field
from typing import Any

from arq import Worker, func
from redis.exceptions import RedisError

from services.worker.jobs import (
    EmailWorkerState,
    RetryPolicy,
    dead_letter_key,
    send_email,
)
from services.worker.metrics import EMAIL_DEAD_LETTERS, EMAIL_QUEUE_DEPTH, MetricsServer
from services.worker.outbox import OutboxSender
from services.worker.resilient import RedisHealth, run_outliving_redis
from services.worker.sender import EmailSender, ResendSender
from services.worker.templates import TemplateRenderer
from shared.email_queue import SEND_EMAIL_JOB
from shared.logging import configure_logging
from shared.redis import create_redis, email_queue_name
from shared.settings import Environment, Settings, SettingsError, get_settings, load_settings
from shared.tracing import setup_tracing

logger = logging.getLogger("blockbot.worker")


@dataclass
class WorkerOptions:
    """Knobs that are not deployment configuration (tests and the benchmark turn them)."""

    sender: EmailSender | None = None  # default: Resend with a key, else the dev outbox
    metrics: bool = True
    metrics_port: int | None = None  # default: settings.worker_metrics_port; 0 picks a free port
    metrics_host: str | None = None  # default: settings.worker_metrics_host
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_delay_seconds: float = 0.2
    burst: bool = False
    handle_signals: bool = True


# arq drops a job whose try count passed its max_tries without calling our code, so without a
# trace in the dead-letter list or the metrics. Our own budget (EMAIL_MAX_TRIES, enforced in
# send_email) ends every job in "sent" or the dead-letter list; arq gets a few more tries so
# that runs cut short by a crash or a kill still reach that decision.
ARQ_CRASH_HEADROOM = 3
# A frozen Redis is noticed after this long (a poll, a job's bookkeeping); /ready pings shorter.
WORKER_REDIS_TIMEOUT_SECONDS = 3.0
READY_PING_SECONDS = 1.0


def arq_max_tries(settings: Settings) -> int:
    """The try limit handed to arq: our retry budget plus room for interrupted runs."""
    return settings.email_max_tries + ARQ_CRASH_HEADROOM


def job_timeout_seconds(settings: Settings) -> float:
    """Upper bound of one attempt: the provider call plus rendering and bookkeeping."""
    return settings.email_send_timeout_seconds + 5.0


class RedactJobArguments(logging.Filter):
    """arq logs each job start with its arguments; ours contain links with secret tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "→" in record.msg and isinstance(record.args, tuple):
            args = list(record.args)
            if len(args) >= 3:
                args[2] = "…"
                record.args = tuple(args)
        return True


def install_log_filter() -> None:
    """Keep job arguments (links with secret tokens) out of arq's log lines."""
    target = logging.getLogger("arq.worker")
    if not any(isinstance(f, RedactJobArguments) for f in target.filters):
        target.addFilter(RedactJobArguments())


def create_sender(settings: Settings) -> EmailSender:
    """Resend when a key is configured, otherwise the development outbox."""
    if settings.resend_api_key is not None:
        return ResendSender(settings)
    return OutboxSender(settings.dev_outbox_dir)


def worker_kwargs(settings: Settings, options: WorkerOptions | None = None) -> dict[str, Any]:
    """Everything arq's `Worker` takes, built from settings (the attributes of `WorkerSettings`)."""
    options = options or WorkerOptions()
    sender = options.sender or create_sender(settings)
    state = EmailWorkerState(
        settings=settings,
        sender=sender,
        renderer=TemplateRenderer(settings.product_name),
        retry=options.retry,
    )
    queue = email_queue_name(settings)
    metrics_server: MetricsServer | None = None
    health = RedisHealth()
    ctx: dict[str, Any] = {"email": state, "redis_health": health}

    async def refresh_gauges() -> None:
        redis = ctx.get("redis")
        if redis is None:
            return
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zcard(queue)
            pipe.llen(dead_letter_key(settings))
            depth, dead = await pipe.execute()
        EMAIL_QUEUE_DEPTH.set(depth)
        EMAIL_DEAD_LETTERS.set(dead)

    async def redis_ready() -> bool:
        redis = ctx.get("redis")
        if redis is None or not health.up:
            return False  # known down: answer at once, not after a ping timeout
        try:
            return bool(await asyncio.wait_for(redis.ping(), READY_PING_SECONDS))
        except (TimeoutError, RedisError, OSError):
            return False

    if options.metrics:
        port = settings.worker_metrics_port if options.metrics_port is None else options.metrics_port
        metrics_server = MetricsServer(
            port,
            host=options.metrics_host or settings.worker_metrics_host,
            refresh=refresh_gauges,
            ready=redis_ready,
        )
        ctx["metrics_server"] = metrics_server

    started = False

    async def on_startup(_: dict[str, Any]) -> None:
        # Each worker `run_outliving_redis` starts after an outage runs it again.
        nonlocal started
        health.succeeded()
        if started:
            return
        started = True
        install_log_filter()
        await sender.start()
        if metrics_server is not None:
            await metrics_server.start()
        logger.info(
            "email worker started",
            extra={
                "queue": queue,
                "mode": sender.mode,
                "concurrency": settings.worker_concurrency,
                "max_tries": settings.email_max_tries,
                "outbox": str(settings.dev_outbox_dir) if sender.mode == "outbox" else None,
                "metrics_port": metrics_server.port if metrics_server else None,
            },
        )

    async def on_shutdown(_: dict[str, Any]) -> None:
        await sender.close()
        if metrics_server is not None:
            await metrics_server.close()
        logger.info("email worker stopped")

    timeout = job_timeout_seconds(settings)
    redis_pool = create_redis(settings, timeout=WORKER_REDIS_TIMEOUT_SECONDS)
    return {
        "functions": [func(send_email, name=SEND_EMAIL_JOB, max_tries=arq_max_tries(settings))],
        "queue_name": queue,
        "redis_pool": redis_pool,
        "job_serializer": redis_pool.job_serializer,  # the client's JSON, for results too: never pickle
        "job_deserializer": redis_pool.job_deserializer,
        "max_tries": arq_max_tries(settings),
        "max_jobs": settings.worker_concurrency,
        "job_timeout": timeout,
        "keep_result": 0,  # results would hold the job arguments, links included
        "log_results": False,
        "job_completion_wait": math.ceil(timeout),
        "poll_delay": options.poll_delay_seconds,
        "burst": options.burst,
        "handle_signals": options.handle_signals,
        "health_check_interval": 30,
        "ctx": ctx,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
    }


def worker_settings(settings: Settings, options: WorkerOptions | None = None) -> type:
    """arq's conventional `WorkerSettings` class, its attributes built from the settings."""
    return type("WorkerSettings", (), worker_kwargs(settings, options))


def create_worker(settings: Settings, options: WorkerOptions | None = None, **overrides: Any) -> Worker:
    """An arq `Worker` for the email queue; create it inside the event loop that will run it."""
    return Worker(**{**worker_kwargs(settings, options), **overrides})


def check_settings(settings: Settings) -> None:
    """Refuse (SettingsError) a worker without Redis, or in production without a Resend key."""
    settings.require("redis_url")
    if settings.env is Environment.PRODUCTION:
        settings.require("resend_api_key")


async def serve(settings: Settings, options: WorkerOptions | None = None) -> None:
    """Run until SIGTERM/SIGINT (or, in burst mode, until the queue is empty), outliving Redis
    outages: one set of hooks, sender, metrics server and Redis client for the workers it runs."""
    options = options or WorkerOptions()
    kwargs = {**worker_kwargs(settings, options), "handle_signals": False}
    health: RedisHealth = kwargs["ctx"]["redis_health"]
    await run_outliving_redis(lambda: Worker(**kwargs), health, handle_signals=options.handle_signals)


async def print_dead_letters(settings: Settings, limit: int) -> None:
    """Print up to `limit` dead-lettered emails as JSON lines, newest first."""
    redis = create_redis(settings)
    try:
        entries: list[bytes] = await redis.lrange(dead_letter_key(settings), 0, limit - 1)  # type: ignore[misc]
    finally:
        await redis.aclose()
    if not entries:
        # stderr: stdout stays JSON lines for scripts.
        print(f"dead-letter list {dead_letter_key(settings)} is empty", file=sys.stderr)
    for raw in entries:
        sys.stdout.write(raw.decode() + "\n")


def main(argv: list[str] | None = None) -> int:
    """`python -m services.worker [dead-letter]`; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m services.worker", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    dead = sub.add_parser("dead-letter", help="print dead-lettered emails, newest first (JSON lines)")
    dead.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)

    settings = get_settings()
    try:
        if args.command == "dead-letter":
            settings.require("redis_url")  # reading needs Redis only, not the sending configuration
        else:
            check_settings(settings)
    except SettingsError as error:
        print(str(error), file=sys.stderr)
        return 2
    if args.command == "dead-letter":
        asyncio.run(print_dead_letters(settings, max(args.limit, 1)))
        return 0

    configure_logging(settings.service_name, settings.log_level)
    install_log_filter()
    setup_tracing(settings.service_name)
    asyncio.run(serve(settings))
    return 0


def __getattr__(name: str) -> Any:
    """`arq services.worker.main.WorkerSettings`: the class, built from the environment on first use
    (so importing this module needs no configuration)."""
    if name == "WorkerSettings":
        settings = load_settings()
        check_settings(settings)
        return worker_settings(settings)
    raise AttributeError(name)
