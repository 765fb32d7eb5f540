"""Per-address work done after the answer, so that its time says nothing about the account.

Register, verify-request, magic-link and password/forgot answer 202 whatever the address; what
they do for it (look it up, write a token or an attempt, queue a mail) differs between known
and unknown addresses, and would show in their response times (bench/auth_timing.py measures
that). So the work runs after the response is sent (Starlette background tasks: the ASGI call
still waits for it, so a graceful shutdown finishes it); a failed login's audit write likewise.
Every run is counted by outcome; a failure is logged, never shown to the client (it already has
its 202). What is lost is only a crash between the answer and the work: the person asks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import BackgroundTasks
from prometheus_client import Counter

logger = logging.getLogger("blockbot.auth.deferred")

DEFERRED_WORK = Counter(
    "auth_deferred_work_total",
    "Per-address work run after the response (register, verify_request, magic_link, "
    "password_forgot, login_failed), by outcome (done, failed).",
    ["kind", "outcome"],
)

Work = Callable[[], Awaitable[None]]
_detached: set[asyncio.Task[None]] = set()


async def _run(kind: str, work: Work) -> None:
    try:
        await work()
    except Exception as error:
        DEFERRED_WORK.labels(kind, "failed").inc()
        logger.error("deferred auth work failed", extra={"kind": kind, "error": repr(error)})
        return
    DEFERRED_WORK.labels(kind, "done").inc()


def after_response(background: BackgroundTasks, kind: str, work: Work) -> None:
    """Run `work` once the response has been sent."""
    background.add_task(_run, kind, work)


def detach(kind: str, work: Work) -> None:
    """Run `work` without delaying an answer that is an error (no background tasks there)."""
    task = asyncio.get_running_loop().create_task(_run(kind, work))
    _detached.add(task)
    task.add_done_callback(_detached.discard)


async def drain() -> None:
    """Wait for detached work (shutdown, tests)."""
    while _detached:
        await asyncio.gather(*list(_detached), return_exceptions=True)
