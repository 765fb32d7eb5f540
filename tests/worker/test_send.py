"""The worker in this process against the fake Resend over loopback, through the real SDK."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack.fake_resend import FakeResend
from devstack.ports import free_port
from services.worker.jobs import dead_letter_key
from services.worker.main import WorkerOptions, create_worker
from shared.email_queue import SEND_EMAIL_JOB, MagicLinkProps, enqueue_email
from shared.redis import email_queue_name
from tests.worker.helpers import drain, sample

TOKEN = "tok_" + "s3cr3t" * 6
LINK = f"http://localhost:8080/auth/magic#token={TOKEN}"


async def queue_magic_link(producer, settings, to: str = "ada@example.org") -> str:
    return await enqueue_email(
        producer(settings),
        settings,
        to=to,
        props=MagicLinkProps(link=LINK, expires_in_seconds=900),
    )


async def test_magic_link_reaches_resend_with_fields_and_idempotency_key(
    worker_settings, producer, fake_resend: FakeResend, caplog: pytest.LogCaptureFixture
) -> None:
    settings = worker_settings()
    before = sample("email_jobs_total", template="magic_link", result="sent")
    caplog.set_level(logging.INFO)

    message_id = await queue_magic_link(producer, settings)
    await drain(settings)

    [delivery] = fake_resend.deliveries
    assert delivery.idempotency_key == f"email-{message_id}"
    assert delivery.sender == "BlockBot <no-reply@blockbot.test>"
    assert delivery.to == ["ada@example.org"]
    assert delivery.subject == "Your sign-in link for BlockBot"
    assert LINK in (delivery.text or "")
    assert f'href="{LINK}"' in (delivery.html or "")
    assert "15 minutes" in (delivery.text or "")
    assert "did not ask" in (delivery.text or "")
    assert sample("email_jobs_total", template="magic_link", result="sent") == before + 1
    assert await producer(settings).zcard(email_queue_name(settings)) == 0
    # The token is a credential: no log line (ours or arq's) may carry it.
    assert TOKEN not in caplog.text
    assert any(r.name == "arq.worker" and "→" in r.getMessage() for r in caplog.records)
    assert any(getattr(r, "job_id", None) == f"email-{message_id}" for r in caplog.records)


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_transient_failure_is_retried_and_sent_once(
    status: int, worker_settings, producer, fake_resend: FakeResend
) -> None:
    settings = worker_settings()
    retries = sample("email_send_retries_total", template="magic_link")
    fake_resend.fail_next(2, status, retry_after=0.05 if status == 429 else None)

    message_id = await queue_magic_link(producer, settings)
    await drain(settings)

    assert len(fake_resend.deliveries) == 1
    requests = fake_resend.requests
    assert [r.outcome for r in requests] == ["injected", "injected", "delivered"]
    assert {r.idempotency_key for r in requests} == {f"email-{message_id}"}
    assert sample("email_send_retries_total", template="magic_link") == retries + 2


async def test_validation_error_is_not_retried_and_is_dead_lettered(
    worker_settings, producer, fake_resend: FakeResend
) -> None:
    settings = worker_settings()
    failed = sample("email_jobs_total", template="magic_link", result="failed")
    retries = sample("email_send_retries_total", template="magic_link")
    fake_resend.fail_next(1, 422)

    message_id = await queue_magic_link(producer, settings, to="bob@example.org")
    await drain(settings)

    assert fake_resend.deliveries == []
    assert len(fake_resend.requests) == 1
    assert sample("email_jobs_total", template="magic_link", result="failed") == failed + 1
    assert sample("email_send_retries_total", template="magic_link") == retries
    redis = producer(settings)
    assert await redis.zcard(email_queue_name(settings)) == 0
    [raw] = await redis.lrange(dead_letter_key(settings), 0, -1)
    assert TOKEN.encode() not in raw
    entry = orjson.loads(raw)
    assert entry["job_id"] == f"email-{message_id}"
    assert entry["template"] == "magic_link"
    assert entry["to"] == "bob@example.org"
    assert entry["result"] == "failed"
    assert entry["status"] == 422
    assert entry["tries"] == 1
    assert "validation_error" in entry["error"]


async def test_unreachable_provider_is_retried_until_the_last_try_then_dead_lettered(
    worker_settings, producer, fake_resend: FakeResend
) -> None:
    settings = worker_settings(resend_api_url=f"http://127.0.0.1:{free_port()}", email_max_tries=3)
    exhausted = sample("email_jobs_total", template="magic_link", result="exhausted")

    await queue_magic_link(producer, settings)
    await drain(settings)

    assert sample("email_jobs_total", template="magic_link", result="exhausted") == exhausted + 1
    [raw] = await producer(settings).lrange(dead_letter_key(settings), 0, -1)
    entry = orjson.loads(raw)
    assert (entry["result"], entry["kind"], entry["tries"]) == ("exhausted", "network", 3)


async def test_invalid_job_is_dead_lettered_without_sending(
    worker_settings, producer, fake_resend: FakeResend
) -> None:
    settings = worker_settings()
    # Written by something other than enqueue_email (which refuses it): the worker checks again.
    await producer(settings).enqueue_job(
        SEND_EMAIL_JOB,
        template="magic_link",
        to="ada@example.org",
        context={"link": "javascript:alert(1)", "expires_in_seconds": 900},
        _queue_name=email_queue_name(settings),
    )
    await drain(settings)

    assert fake_resend.requests == []
    [raw] = await producer(settings).lrange(dead_letter_key(settings), 0, -1)
    assert orjson.loads(raw)["result"] == "invalid"


async def test_send_span_is_a_child_of_the_enqueuing_span(worker_settings, producer) -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = worker_settings()

    with trace.get_tracer("test").start_as_current_span("request") as parent:
        await queue_magic_link(producer, settings)
    await drain(settings)

    [span] = [s for s in exporter.get_finished_spans() if s.name == "email.send"]
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes is not None and span.attributes["email.template"] == "magic_link"


async def test_metrics_and_health_on_the_worker_port(worker_settings, producer, fake_resend) -> None:
    settings = worker_settings()
    worker = create_worker(
        settings,
        WorkerOptions(
            metrics_port=0, metrics_host="127.0.0.1", handle_signals=False, poll_delay_seconds=0.05
        ),
    )
    task = asyncio.create_task(worker.async_run())
    try:
        await queue_magic_link(producer, settings)
        deadline = asyncio.get_running_loop().time() + 10
        while not fake_resend.deliveries and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        port = worker.ctx["metrics_server"].port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            health = await client.get("/health")
            ready = await client.get("/ready")
            metrics = await client.get("/metrics")
            missing = await client.get("/nope")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert ready.status_code == 200
        assert metrics.status_code == 200
        for name in (
            "email_jobs_total",
            "email_send_duration_seconds_bucket",
            "email_send_retries_total",
            "email_queue_depth",
            "email_dead_letter_entries",
        ):
            assert name in metrics.text
        assert missing.status_code == 404
    finally:
        await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_job_whose_earlier_runs_were_interrupted_still_ends_in_the_dead_letter_list(
    worker_settings, producer, fake_resend: FakeResend
) -> None:
    # Runs killed mid-send count as tries without reaching our code. A job arriving with its
    # try count already past EMAIL_MAX_TRIES must still be decided by us (here: dead-lettered),
    # not dropped silently by arq's own "max retries exceeded" path.
    settings = worker_settings(resend_api_url=f"http://127.0.0.1:{free_port()}", email_max_tries=2)
    producer_client = producer(settings)
    job = await producer_client.enqueue_job(
        "send_email",
        template="magic_link",
        to="ada@example.org",
        context={"link": LINK, "expires_in_seconds": 900},
        trace_context={},
        _job_id="email-crashed",
        _queue_name=email_queue_name(settings),
        _job_try=3,
    )
    assert job is not None
    await drain(settings)

    [raw] = await producer_client.lrange(dead_letter_key(settings), 0, -1)
    entry = orjson.loads(raw)
    assert (entry["job_id"], entry["result"], entry["tries"]) == ("email-crashed", "exhausted", 3)
