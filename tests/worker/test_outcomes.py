"""`deliver` classifies one attempt into an outcome; a fake sender stands in for the provider
(the real SDK against the fake Resend is in test_send.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from services.worker.jobs import EmailWorkerState, Outcome, deliver
from services.worker.sender import OutgoingEmail, PermanentSendError, TransientSendError
from services.worker.templates import TemplateRenderer

CONTEXT = {"link": "http://localhost/auth/magic#token=x", "expires_in_seconds": 900}


class FakeSender:
    mode = "fake"

    def __init__(self, result: str | Exception) -> None:
        self.result = result
        self.sent: list[OutgoingEmail] = []

    async def start(self) -> None:
        return None

    async def send(self, email: OutgoingEmail) -> str:
        self.sent.append(email)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    async def close(self) -> None:
        return None


def state(worker_settings, sender: FakeSender) -> EmailWorkerState:
    return EmailWorkerState(
        settings=worker_settings(email_max_tries=3), sender=sender, renderer=TemplateRenderer("BlockBot")
    )


async def attempt(worker_settings, sender: FakeSender, *, job_try: int = 1, **job):
    values = {"template": "magic_link", "to": "ada@example.org", "context": CONTEXT, **job}
    return await deliver(state(worker_settings, sender), job_id="email-abc", job_try=job_try, **values)


async def test_sent_carries_the_provider_id_and_the_job_id_as_idempotency_key(worker_settings):
    sender = FakeSender("re_123")
    delivery = await attempt(worker_settings, sender)
    assert delivery.outcome is Outcome.SENT and delivery.provider_id == "re_123"
    assert sender.sent[0].idempotency_key == "email-abc" and sender.sent[0].message_id == "abc"


@pytest.mark.parametrize(
    ("job_try", "outcome"), [(1, Outcome.RETRY), (2, Outcome.RETRY), (3, Outcome.EXHAUSTED)]
)
async def test_transient_failure_retries_until_the_last_try(worker_settings, job_try, outcome):
    error = TransientSendError("busy", status=429, kind="rate_limit", retry_after=2.0)
    delivery = await attempt(worker_settings, FakeSender(error), job_try=job_try)
    assert delivery.outcome is outcome
    assert (delivery.status, delivery.kind, delivery.retry_after) == (429, "rate_limit", 2.0)


async def test_permanent_failure_and_unexpected_errors(worker_settings):
    refused = await attempt(worker_settings, FakeSender(PermanentSendError("bad", status=422)))
    assert refused.outcome is Outcome.FAILED and refused.status == 422
    crashed = await attempt(worker_settings, FakeSender(OSError("disk full")))
    assert crashed.outcome is Outcome.RETRY and crashed.kind == "OSError"


@pytest.mark.parametrize(
    "job",
    [{"to": "a@example.org\r\nBcc: b@example.org"}, {"template": "nope"}, {"context": {"link": "x"}}],
)
async def test_invalid_job_sends_nothing(worker_settings, job):
    sender = FakeSender("re_1")
    delivery = await attempt(worker_settings, sender, **job)
    assert delivery.outcome is Outcome.INVALID and delivery.elapsed is None
    assert sender.sent == []


def test_worker_settings_is_the_class_arq_reads(worker_settings):
    from arq.worker import get_kwargs

    from services.worker.main import arq_max_tries
    from services.worker.main import worker_settings as build
    from shared.email_queue import SEND_EMAIL_JOB
    from shared.redis import email_queue_name

    settings = worker_settings()
    cls = build(settings)
    assert isinstance(cls, type) and cls.__name__ == "WorkerSettings"
    kwargs: dict[str, Any] = cast(dict[str, Any], get_kwargs(cls))  # arq annotates it oddly
    assert kwargs["queue_name"] == email_queue_name(settings)
    assert kwargs["keep_result"] == 0 and kwargs["max_tries"] == arq_max_tries(settings)
    assert [f.name for f in kwargs["functions"]] == [SEND_EMAIL_JOB]
