"""The email job contract between the services that enqueue (auth, api) and the worker.

Jobs are serialized as JSON, not arq's default pickle: whoever can write to Redis must not be
able to run code in the worker. The W3C trace context travels in the job so the send is a child
span of the request that queued it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import orjson
from arq.connections import ArqRedis
from opentelemetry import propagate

from shared.errors import ServiceUnavailable
from shared.redis_errors import redis_or_503
from shared.settings import Settings

SEND_EMAIL_JOB = "send_email"
QUEUE_UNAVAILABLE = "The email could not be queued; retry later."


class EmailTemplate(StrEnum):
    """Every email the platform sends. Context keys each template expects are listed."""

    MAGIC_LINK = "magic_link"  # link, expires_in_seconds
    VERIFY_EMAIL = "verify_email"  # link, expires_in_seconds, name
    PASSWORD_RESET = "password_reset"  # link, expires_in_seconds
    INVITATION = "invitation"  # link, expires_in_seconds, org_name, inviter_name, role
    ACCOUNT_EXISTS = "account_exists"  # login_link, reset_link


def email_queue_name(settings: Settings) -> str:
    """The arq queue the worker drains, namespaced by the deployment's key prefix."""
    return settings.redis_key_prefix + "queue:email"


def serialize_job(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)


def deserialize_job(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(data)
    return value


async def enqueue_email(
    queue: ArqRedis,
    settings: Settings,
    *,
    template: EmailTemplate,
    to: str,
    context: dict[str, Any],
) -> str:
    """Queue one email and return its message id; a Redis failure is a 503, never a silent loss."""
    message_id = uuid.uuid4().hex
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    with redis_or_503(QUEUE_UNAVAILABLE, event="email enqueue failed", template=str(template)):
        job = await queue.enqueue_job(
            SEND_EMAIL_JOB,
            template=str(template),
            to=to,
            context=context,
            trace_context=carrier,
            _job_id=f"email-{message_id}",
            _queue_name=email_queue_name(settings),
        )
    if job is None:  # pragma: no cover - ids are random, a clash means a bug
        raise ServiceUnavailable(QUEUE_UNAVAILABLE)
    return message_id
