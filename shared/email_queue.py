"""The email job contract between the services that enqueue (auth, api) and the worker.

Jobs are serialized as JSON, not arq's default pickle: whoever can write to Redis must not be
able to run code in the worker. The W3C trace context travels in the job so the send is a child
span of the request that queued it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

from arq.connections import ArqRedis
from opentelemetry import propagate
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.errors import ServiceUnavailable

# The queue's name and job encoding belong to the one Redis client (shared.redis), which uses them.
from shared.redis import email_queue_name, guarded
from shared.redis_errors import redis_or_503
from shared.roles import Role
from shared.settings import Settings

SEND_EMAIL_JOB = "send_email"
QUEUE_UNAVAILABLE = "The email could not be queued; retry later."


class EmailTemplate(StrEnum):
    """Every email the platform sends; what each needs is its props model below."""

    MAGIC_LINK = "magic_link"
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"
    INVITATION = "invitation"
    ACCOUNT_EXISTS = "account_exists"
    RECOVERY_CODE_USED = "recovery_code_used"
    SECOND_FACTORS_REMOVED = "second_factors_removed"
    PASSWORD_CHANGED = "password_changed"


def _absolute_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Link = Annotated[str, AfterValidator(_absolute_http_url)]
Lifetime = Annotated[int, Field(strict=True, gt=0)]  # seconds
Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]


class EmailProps(BaseModel):
    """What one template is rendered with: checked when the job is queued and again by the
    worker (whoever can write to Redis can write a job). Links carry secret tokens: errors
    name the field, never the value."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)
    template: ClassVar[EmailTemplate]


class _LinkProps(EmailProps):
    """A message whose link works for a limited time."""

    link: Link
    expires_in_seconds: Lifetime


class MagicLinkProps(_LinkProps):
    template = EmailTemplate.MAGIC_LINK


class VerifyEmailProps(_LinkProps):
    template = EmailTemplate.VERIFY_EMAIL
    name: Text


class PasswordResetProps(_LinkProps):
    template = EmailTemplate.PASSWORD_RESET


class InvitationProps(_LinkProps):
    template = EmailTemplate.INVITATION
    org_name: Text
    inviter_name: Text
    role: Role


class AccountExistsProps(EmailProps):
    template = EmailTemplate.ACCOUNT_EXISTS
    login_link: Link
    reset_link: Link


class RecoveryCodeUsedProps(EmailProps):
    """A recovery code of the account was used to sign in."""

    template = EmailTemplate.RECOVERY_CODE_USED
    remaining: Annotated[int, Field(strict=True, ge=0, le=100)]
    account_link: Link


class SecondFactorsRemovedProps(EmailProps):
    """An operator removed the account's second factors (the lost-device path)."""

    template = EmailTemplate.SECOND_FACTORS_REMOVED
    account_link: Link


class PasswordChangedProps(EmailProps):
    """The account's password was changed from a signed-in session (not by a reset link)."""

    template = EmailTemplate.PASSWORD_CHANGED
    reset_link: Link


PROPS: dict[EmailTemplate, type[EmailProps]] = {
    props.template: props
    for props in (
        MagicLinkProps,
        VerifyEmailProps,
        PasswordResetProps,
        InvitationProps,
        AccountExistsProps,
        RecoveryCodeUsedProps,
        SecondFactorsRemovedProps,
        PasswordChangedProps,
    )
}


async def enqueue_email(queue: ArqRedis, settings: Settings, *, to: str, props: EmailProps) -> str:
    """Queue one email and return its message id; a Redis failure is a 503, never a silent loss."""
    message_id = uuid.uuid4().hex
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    template = str(props.template)
    with redis_or_503(QUEUE_UNAVAILABLE, event="email enqueue failed", template=template):
        job = await guarded(
            queue,
            lambda: queue.enqueue_job(
                SEND_EMAIL_JOB,
                template=template,
                to=to,
                context=props.model_dump(mode="json"),
                trace_context=carrier,
                _job_id=f"email-{message_id}",
                _queue_name=email_queue_name(settings),
            ),
        )
    if job is None:  # pragma: no cover - ids are random, a clash means a bug
        raise ServiceUnavailable(QUEUE_UNAVAILABLE)
    return message_id
