"""Traces: an incoming W3C `traceparent` is continued; SQL and Redis calls are child spans; the
email job carries the context, so the worker's send is a child of the request that queued it;
log lines inside a request carry its trace and span ids. Tracing is off unless OTEL_* ask."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.tracing import tracing_enabled
from tests.observability.helpers import AUTH, PASSWORD, ROOT, LogCapture, new_email, run_worker_burst


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def db_system(span: ReadableSpan) -> Any:
    attrs = span.attributes or {}
    return attrs.get("db.system") or attrs.get("db.system.name")


async def test_incoming_traceparent_is_continued_with_db_and_redis_child_spans(
    spans: InMemorySpanExporter, start_services: Any
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    capture = LogCapture()
    async with start_services() as svc, svc.client(svc.auth) as client:
        spans.clear()
        capture.install()
        try:
            response = await client.post(
                f"{AUTH}/login",
                json={"email": new_email(), "password": "not-the-password"},
                headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            )
        finally:
            capture.remove()
    assert response.status_code == 401

    in_trace = [s for s in spans.get_finished_spans() if hex_trace(s) == trace_id]
    server = [s for s in in_trace if s.kind is SpanKind.SERVER]
    assert len(server) == 1, [s.name for s in in_trace]
    request_span = server[0]
    assert request_span.parent is not None and request_span.parent.is_remote
    assert format(request_span.parent.span_id, "016x") == parent_id
    assert (request_span.attributes or {}).get("http.route") == f"{AUTH}/login"

    # The unknown user is looked up in PostgreSQL and the rate limit checked in Redis, each a
    # client span of this trace.
    systems = {db_system(s) for s in in_trace if s.kind is SpanKind.CLIENT}
    assert {"postgresql", "redis"} <= systems, systems
    span_ids = {format(s.context.span_id, "016x") for s in in_trace if s.context is not None}

    # The access log line of the request carries the trace id and a span id of that trace.
    access = [e for e in capture.events() if e.get("logger") == "blockbot.access"]
    assert access, capture.text
    assert access[-1]["trace_id"] == trace_id
    assert access[-1]["span_id"] in span_ids
    assert access[-1]["request_id"]


async def test_email_send_span_is_a_child_of_the_request_that_queued_it(
    spans: InMemorySpanExporter, start_services: Any
) -> None:
    email = new_email()
    async with start_services() as svc, svc.client(svc.auth) as client:
        spans.clear()
        response = await client.post(
            f"{AUTH}/register",
            json={"email": email, "password": PASSWORD, "name": "Trace", "org_name": "Trace Org"},
        )
        assert response.status_code == 202, response.text
        await run_worker_burst(svc.auth_settings)

    finished = spans.get_finished_spans()
    requests = [
        s
        for s in finished
        if s.kind is SpanKind.SERVER and (s.attributes or {}).get("http.route") == f"{AUTH}/register"
    ]
    sends = [s for s in finished if s.name == "email.send"]
    assert len(requests) == 1 and len(sends) == 1, [s.name for s in finished]
    request_span, send = requests[0], sends[0]
    assert send.kind is SpanKind.CONSUMER
    assert (send.attributes or {}).get("email.template") == "verify_email"
    assert hex_trace(send) == hex_trace(request_span)
    assert send.parent is not None and request_span.context is not None
    # The mail is queued after the response (auth's deferred work), in a background-task span
    # that is the request's own child.
    queued_in = next(
        s for s in finished if s.context is not None and s.context.span_id == send.parent.span_id
    )
    assert queued_in.parent is not None and queued_in.parent.span_id == request_span.context.span_id
    # The enqueue itself is a Redis span of the same trace.
    assert any(db_system(s) == "redis" and hex_trace(s) == hex_trace(request_span) for s in finished)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_configured_by_the_standard_otel_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled() is expected


PROBE = """
import json
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from shared.tracing import setup_tracing, tracing_active
from shared.settings import load_settings
from shared.redis import create_redis
setup_tracing("probe")
create_redis(load_settings(env="test", service_name="probe", database_url="postgresql://x@127.0.0.1/x",
                           redis_url="redis://127.0.0.1:1/0"))
print(json.dumps({"active": tracing_active(),
                  "provider": type(trace.get_tracer_provider()).__name__,
                  "redis_instrumented": RedisInstrumentor().is_instrumented_by_opentelemetry}))
"""


@pytest.mark.slow  # a fresh interpreter per case
@pytest.mark.parametrize(
    ("env", "active"),
    [({}, False), ({"OTEL_TRACES_EXPORTER": "console"}, True)],
)
def test_tracing_off_by_default_installs_and_instruments_nothing(env: dict[str, str], active: bool) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state == {
        "active": active,
        "provider": "TracerProvider" if active else "ProxyTracerProvider",
        "redis_instrumented": active,
    }
