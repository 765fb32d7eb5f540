"""OpenTelemetry set-up: off unless the standard OTEL_* variables ask for an exporter.

The W3C `traceparent` header is the propagation format (OTel's default), so a trace started at
Traefik continues through the services and, via the job payload (`trace_context`, see
`shared.email_queue`), into the worker, where the send is a child span of the request.

What is traced once tracing is on:

* every HTTP request (server span, continuing an incoming `traceparent`): `instrument_app`;
* every SQL statement of the process's engine (parameterized text only, never bound values):
  `instrument_engine`, called by `shared.db.create_engine`;
* every Redis command and pipeline (command names only, arguments replaced by `?`):
  `instrument_redis`, called by `shared.redis.create_redis`.

Configuration is the SDK's own (https://opentelemetry.io/docs/specs/otel/configuration/):

* `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: export over OTLP/HTTP;
* `OTEL_TRACES_EXPORTER`: `otlp` (default once an endpoint is set), `console` (spans as JSON
  on stderr, for a quick look), `none` (off even with an endpoint);
* `OTEL_SDK_DISABLED=true`: off whatever else is set;
* `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`,
  `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`: read by the SDK as usual.

When nothing is set no tracer provider is installed, and the database and Redis clients are
not instrumented at all, nor is the app (no middleware), so tracing that is off costs nothing.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("blockbot.tracing")

# Probes and scrapes would be most of the spans and say nothing.
EXCLUDED_URLS = "/health,/ready,/metrics"
_configured = False
_redis_instrumented = False
_ENGINE_MARK = "_blockbot_otel_instrumented"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def tracing_enabled() -> bool:
    """True when an OTLP endpoint or an explicit traces exporter is configured."""
    if _truthy(os.environ.get("OTEL_SDK_DISABLED")):
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracing_active() -> bool:
    """True when spans are recorded: configured here, or an SDK provider installed (tests)."""
    return _configured or isinstance(trace.get_tracer_provider(), TracerProvider)


def _exporters() -> list[SpanExporter]:
    names = [
        name.strip().lower()
        for name in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")
        if name.strip()
    ]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "otlp":
            protocol = (
                os.environ.get(
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
                )
                .strip()
                .lower()
            )
            if protocol and protocol != "http/protobuf":
                logger.warning(
                    "only the OTLP http/protobuf protocol is installed; using it",
                    extra={"requested_protocol": protocol},
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            logger.warning("unknown OTEL_TRACES_EXPORTER value ignored", extra={"exporter": name})
    return exporters


def setup_tracing(service_name: str) -> None:
    """Install a tracer provider exporting as configured, and trace Redis; idempotent."""
    global _configured
    if _configured or not tracing_enabled():
        return
    exporters = _exporters()
    if not exporters:
        return
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True
    instrument_redis()
    logger.info("tracing enabled", extra={"exporters": [type(e).__name__ for e in exporters]})


def instrument_app(app: FastAPI) -> None:
    """Create server spans for requests, continuing an incoming `traceparent`."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS)


def instrument_engine(engine: AsyncEngine) -> None:
    """One client span per SQL statement of `engine` (no-op while tracing is off)."""
    if not tracing_active() or getattr(engine.sync_engine, _ENGINE_MARK, False):
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import get_meter

    # The instrumentor is a singleton that instruments one engine per process; tests and
    # tools build several, so each gets its own EngineTracer (what `instrument(engine=)` does).
    tracer = trace.get_tracer(SQLAlchemyInstrumentor.__module__, __version__)
    usage = get_meter(SQLAlchemyInstrumentor.__module__, __version__).create_up_down_counter(
        name="db.client.connections.usage",
        unit="connections",
        description="The number of connections that are currently in state described by the state attribute.",
    )
    engine_tracer: Any = EngineTracer  # untyped
    engine_tracer(tracer, engine.sync_engine, usage)
    setattr(engine.sync_engine, _ENGINE_MARK, True)


def instrument_redis() -> None:
    """One client span per Redis command or pipeline, process-wide (no-op while tracing is off)."""
    global _redis_instrumented
    if _redis_instrumented or not tracing_active():
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor: Any = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    _redis_instrumented = True
