"""The `send_email` arq job: render, deliver once, retry what is transient, record what is not.

Exactly-once delivery rests on two things: arq re-runs a job whose worker died (the job stays in
the queue until it finishes; the in-progress marker expires), and every attempt of one job sends
the same idempotency key (the job id) with byte-identical content, so the provider answers a
repeat with the first response instead of delivering twice.

Logs carry the job id, template, try and outcome, never the context or the bodies: the links
in them are credentials. Permanent failures go to a capped Redis list
(`<REDIS_KEY_PREFIX>email:dead-letter`, newest first) an operator can read with
`python -m services.worker dead-letter`.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from enum import StrEnum
from typing import Any

import orjson
from arq import Retry
from arq.connections import ArqRedis
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from redis.exceptions import RedisError

from services.worker.metrics import EMAIL_JOBS, EMAIL_RETRIES, EMAIL_SEND_DURATION
from services.worker.sender import (
    EmailSender,
    OutgoingEmail,
    SendError,
    TransientSendError,
)
from services.worker.templates import InvalidEmailJob, TemplateRenderer
from shared.email_queue import EmailTemplate
from shared.redis import redis_key
from shared.settings import Settings

logger = logging.getLogger("blockbot.worker")
tracer = trace.get_tracer("blockbot.worker")

DEAD_LETTER_MAX = 10_000
_KNOWN_TEMPLATES = frozenset(t.value for t in EmailTemplate)
_random = secrets.SystemRandom()


def dead_letter_key(settings: Settings) -> str:
    """The Redis list of dead-lettered emails (newest first)."""
    return redis_key(settings, "email", "dead-letter")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: try n waits between d/2 and d, d = min(cap, base * 2^(n-1)).

    With the defaults (5 s base, 5 min cap, 8 tries) a message keeps trying for about ten
    minutes, the life of a magic link, before it is dead-lettered. A provider's `Retry-After`
    is honoured as a floor (capped too).
    """

    base_seconds: float = 5.0
    max_seconds: float = 300.0

    def delay(self, job_try: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try `job_try` + 1."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** max(job_try - 1, 0))
        delay = ceiling / 2 + float(_random.uniform(0, ceiling / 2))
        if retry_after:
            delay = max(delay, min(retry_after, self.max_seconds))
        return delay


@dataclass
class EmailWorkerState:
    """What the job needs, built once per worker and kept in arq's ctx under `email`."""

    settings: Settings
    sender: EmailSender
    renderer: TemplateRenderer
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def max_tries(self) -> int:
        """The retry budget: a job ends sent or dead-lettered by this try."""
        return self.settings.email_max_tries


def template_label(template: object) -> str:
    """Bounded label values: a garbage template name must not create a new time series."""
    return template if isinstance(template, str) and template in _KNOWN_TEMPLATES else "unknown"


def _message_id(job_id: str) -> str:
    return job_id.removeprefix("email-")


def _check_recipient(to: object) -> str:
    if not isinstance(to, str) or "\r" in to or "\n" in to or len(to) > 320:
        raise InvalidEmailJob("recipient must be one email address")
    _, address = parseaddr(to)
    if not address or "@" not in address:
        raise InvalidEmailJob("recipient must be one email address")
    return to


def _recipient_domain(to: object) -> str | None:
    if isinstance(to, str) and "@" in to:
        return to.rsplit("@", 1)[1].strip("> ").lower()[:255]
    return None


async def record_dead_letter(
    redis: ArqRedis,
    settings: Settings,
    *,
    job_id: str,
    template: object,
    to: object,
    result: str,
    job_try: int,
    error: str,
    status: int = 0,
    kind: str = "error",
) -> None:
    """Keep a permanently failed email where an operator can find it (never its context)."""
    entry = {
        "job_id": job_id,
        "message_id": _message_id(job_id),
        "template": template if isinstance(template, str) else repr(template)[:100],
        "to": to if isinstance(to, str) else None,
        "result": result,
        "status": status,
        "kind": kind,
        "error": error[:500],
        "tries": job_try,
        "failed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    key = dead_letter_key(settings)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, orjson.dumps(entry))
            pipe.ltrim(key, 0, DEAD_LETTER_MAX - 1)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.error("email dead-letter write failed", extra={"job_id": job_id, "error": type(exc).__name__})


class Outcome(StrEnum):
    """What one attempt came to; each has one settling rule in `_SETTLE`."""

    SENT = "sent"
    RETRY = "retry"
    EXHAUSTED = "exhausted"  # transient failure on the last try
    FAILED = "failed"  # the provider refused this message for good
    INVALID = "invalid"  # the job itself is unusable: nothing was sent


@dataclass(frozen=True)
class Delivery:
    """The result of `deliver`: the outcome and what the logs, metrics and dead letters need."""

    outcome: Outcome
    provider_id: str | None = None
    error: str = ""
    status: int = 0
    kind: str = "error"
    retry_after: float | None = None
    elapsed: float | None = None  # None when nothing was handed to the provider


@dataclass(frozen=True)
class _Settle:
    level: int
    message: str
    duration_label: str | None  # email_send_duration_seconds{result}
    span_error: str | None
    dead_letter: bool


_SETTLE: dict[Outcome, _Settle] = {
    Outcome.SENT: _Settle(logging.INFO, "email sent", "ok", None, False),
    Outcome.RETRY: _Settle(
        logging.WARNING,
        "email send failed, retrying",
        "transient_error",
        "transient failure, retrying",
        False,
    ),
    Outcome.EXHAUSTED: _Settle(
        logging.ERROR,
        "email send failed on the last try, dead-lettered",
        "transient_error",
        "retries exhausted",
        True,
    ),
    Outcome.FAILED: _Settle(
        logging.ERROR, "email rejected by the provider, dead-lettered", "permanent_error", "rejected", True
    ),
    Outcome.INVALID: _Settle(logging.ERROR, "email job invalid, not sent", None, "invalid job", True),
}


async def _send(sender: EmailSender, email: OutgoingEmail) -> str:
    """Hand the message over; anything unexpected (a full disk in outbox mode) is transient."""
    try:
        return await sender.send(email)
    except SendError:
        raise
    except Exception as unexpected:
        raise TransientSendError(
            f"{type(unexpected).__name__}: {unexpected}"[:300], kind=type(unexpected).__name__
        ) from None


async def deliver(
    state: EmailWorkerState, *, job_id: str, template: object, to: object, context: object, job_try: int
) -> Delivery:
    """Render and send one message once; never raises for a classified failure."""
    try:
        recipient = _check_recipient(to)
        rendered = state.renderer.render(template, context)
    except InvalidEmailJob as error:
        return Delivery(Outcome.INVALID, error=str(error), kind="invalid")
    email = OutgoingEmail(
        message_id=_message_id(job_id),
        idempotency_key=job_id,
        template=template_label(template),
        sender=state.settings.email_from,
        to=recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
    )
    started = time.perf_counter()
    try:
        provider_id = await _send(state.sender, email)
    except SendError as error:
        if isinstance(error, TransientSendError):
            outcome = Outcome.EXHAUSTED if job_try >= state.max_tries else Outcome.RETRY
        else:
            outcome = Outcome.FAILED
        return Delivery(
            outcome,
            error=str(error),
            status=error.status,
            kind=error.kind,
            retry_after=error.retry_after,
            elapsed=time.perf_counter() - started,
        )
    return Delivery(Outcome.SENT, provider_id=provider_id, elapsed=time.perf_counter() - started)


async def settle(
    delivery: Delivery,
    *,
    state: EmailWorkerState,
    redis: ArqRedis,
    span: trace.Span,
    log: dict[str, Any],
    job_id: str,
    template: object,
    to: object,
    job_try: int,
) -> dict[str, str]:
    """Count, log and (for a dead end) dead-letter one delivery; `Retry` for another try."""
    rule = _SETTLE[delivery.outcome]
    label = log["template"]
    details = dict(log)
    if delivery.elapsed is not None:
        assert rule.duration_label is not None
        EMAIL_SEND_DURATION.labels(rule.duration_label).observe(delivery.elapsed)
    if delivery.outcome is Outcome.SENT:
        span.set_attribute("email.provider_id", delivery.provider_id or "")
        details.update(mode=state.sender.mode, provider_id=delivery.provider_id)
    elif delivery.outcome is not Outcome.INVALID:
        span.set_attribute("email.status", delivery.status)
        details.update(status=delivery.status, kind=delivery.kind)
    if delivery.error:
        details["error"] = delivery.error
    if delivery.elapsed is not None:
        details["duration_seconds"] = round(delivery.elapsed, 4)
    if rule.span_error is not None:
        span.set_status(Status(StatusCode.ERROR, rule.span_error))

    if delivery.outcome is Outcome.RETRY:
        defer = state.retry.delay(job_try, delivery.retry_after)
        EMAIL_RETRIES.labels(label).inc()
        logger.log(rule.level, rule.message, extra={**details, "retry_in_seconds": round(defer, 3)})
        raise Retry(defer=defer)
    EMAIL_JOBS.labels(label, delivery.outcome.value).inc()
    logger.log(rule.level, rule.message, extra=details)
    if rule.dead_letter:
        await record_dead_letter(
            redis,
            state.settings,
            job_id=job_id,
            template=template,
            to=to,
            result=delivery.outcome.value,
            job_try=job_try,
            error=delivery.error,
            status=delivery.status,
            kind=delivery.kind,
        )
        return {"result": delivery.outcome.value}
    return {"result": "sent", "provider_id": delivery.provider_id or ""}


async def send_email(
    ctx: dict[str, Any],
    *,
    template: object,
    to: object,
    context: object,
    trace_context: object = None,
    **_: Any,
) -> dict[str, str]:
    """The arq job: deliver one email and settle the outcome (`Retry` before the last try)."""
    state: EmailWorkerState = ctx["email"]
    redis: ArqRedis = ctx["redis"]
    job_id: str = ctx["job_id"]
    job_try: int = ctx.get("job_try", 1)
    label = template_label(template)
    log = {
        "job_id": job_id,
        "template": label,
        "try": job_try,
        "max_tries": state.max_tries,
        "to_domain": _recipient_domain(to),
    }
    parent = propagate.extract(trace_context if isinstance(trace_context, dict) else {})
    attributes: dict[str, str | int] = {
        "messaging.system": "arq",
        "messaging.message.id": job_id,
        "email.template": label,
        "email.try": job_try,
        "email.mode": state.sender.mode,
    }
    with tracer.start_as_current_span(
        "email.send", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        delivery = await deliver(
            state, job_id=job_id, template=template, to=to, context=context, job_try=job_try
        )
        return await settle(
            delivery,
            state=state,
            redis=redis,
            span=span,
            log=log,
            job_id=job_id,
            template=template,
            to=to,
            job_try=job_try,
        )
