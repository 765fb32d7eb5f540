"""Observability test harness: the real auth, api and worker in-process, spans in memory,
every log line captured, and the Prometheus tools (Debian's `prometheus` package).

`promtool` and `prometheus` are system binaries, not Python packages. Without them the tests
that need them are skipped with the reason, except in CI (`CI` or `REQUIRE_PROMTOOL=1`), where
a missing binary is a failure: CI installs the package (`.ci/run`).
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.access_tokens import b64url_encode, raw_public_bytes
from shared.logging import JsonFormatter
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "infra" / "prometheus"
GRAFANA_DIR = ROOT / "infra" / "grafana"
AUTH = "/api/v1/auth"
PASSWORD = "Observability-Pa55word-" + secrets.token_hex(4)
GENEROUS = {"ratelimit_auth_ip_per_minute": 1_000_000, "ratelimit_auth_email_per_hour": 1_000_000}


def binaries_required() -> bool:
    """In CI a missing Prometheus binary fails the tests instead of skipping them."""
    flag = os.environ.get("REQUIRE_PROMTOOL", "").strip().lower()
    return flag in ("1", "true", "yes") or bool(os.environ.get("CI", "").strip())


def require_binary(name: str) -> str:
    """The path of `name`, or skip (fail in CI) naming the package that provides it."""
    path = shutil.which(name)
    if path is None:
        reason = (
            f"`{name}` not found: install Debian's `prometheus` package "
            f"(apt-get install prometheus) to run this test"
        )
        if binaries_required():
            pytest.fail(reason + " (required: CI or REQUIRE_PROMTOOL=1 is set)")
        pytest.skip(reason)
    return path


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args], input=stdin, capture_output=True, text=True,
        timeout=120, check=False, cwd=ROOT,
    )


# --- spans ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spans() -> Iterator[InMemorySpanExporter]:
    """Every finished span of this process, in memory (the SDK provider is installed once).

    Requested before any app or worker is built, so their database and Redis clients are
    instrumented (instrumentation is skipped while no SDK provider is installed).
    """
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later tests' spans are dropped, not accumulated


# --- logs -------------------------------------------------------------------------------------


class LogCapture:
    """Every record reaching the root logger, rendered by the services' own JSON formatter."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter("test"))
        self.handler.setLevel(logging.DEBUG)

    def install(self) -> None:
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)

    def remove(self) -> None:
        logging.getLogger().removeHandler(self.handler)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def events(self) -> list[dict[str, Any]]:
        import orjson

        return [orjson.loads(line) for line in self.text.splitlines() if line.strip()]


# --- the services -----------------------------------------------------------------------------


@dataclass
class Services:
    """The real auth and api apps (lifespans running) and the settings a worker would use."""

    auth: FastAPI
    api: FastAPI
    auth_settings: Settings
    api_settings: Settings

    def client(self, app: FastAPI, ip: str = "198.51.100.23") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 41000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture(scope="session")
def start_services(make_settings: Callable[..., Settings], redis_prefix: str) -> Callable[..., Any]:
    """`async with start_services() as svc:` runs auth and api with their own key prefix.

    The api verifies the auth app's tokens with the auth key's PUBLIC half, as in production.
    """
    from services.api.app import create_api_app
    from services.auth.app import create_auth_app
    from services.auth.keys import KeyRing, generate_seed, parse_private_key, signing_key

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Services]:
        prefix = f"{redis_prefix}obs{secrets.token_hex(3)}:"
        key = signing_key(parse_private_key(generate_seed()))
        auth_settings = make_settings("auth", redis_key_prefix=prefix, **{**GENEROUS, **overrides})
        api_settings = make_settings(
            "api", redis_key_prefix=prefix,
            jwt_public_keys=[b64url_encode(raw_public_bytes(key.public_key))],
        )
        auth = create_auth_app(auth_settings, keyring=KeyRing((key,)))
        api = create_api_app(api_settings)
        async with auth.router.lifespan_context(auth), api.router.lifespan_context(api):
            yield Services(auth, api, auth_settings, api_settings)

    return start


async def run_worker_burst(settings: Settings) -> None:
    """Drain the email queue of `settings` once with the real worker (dev outbox sender)."""
    from services.worker.main import WorkerOptions, create_worker

    worker = create_worker(
        settings, WorkerOptions(metrics=False, burst=True, handle_signals=False, poll_delay_seconds=0.05)
    )
    try:
        await worker.main()
    finally:
        await worker.close()


def new_email() -> str:
    return f"obs-{uuid.uuid4().hex[:12]}@example.com"


# --- what each process must expose ------------------------------------------------------------

HTTP_METRICS = {
    "http_requests_total": "counter",
    "http_request_duration_seconds": "histogram",
    "http_requests_in_flight": "gauge",
    "db_pool_connections_in_use": "gauge",
    "db_pool_connections": "gauge",
    "ratelimit_decisions_total": "counter",
}
REQUIRED_METRICS: dict[str, dict[str, str]] = {
    "auth": {
        **HTTP_METRICS,
        "auth_logins_total": "counter",
        "auth_refresh_total": "counter",  # result="rotated" | "reuse_detected" | ...
        "auth_magic_links_total": "counter",  # event="issued" | "consumed"
        "auth_sessions_revoked_total": "counter",
    },
    "api": {
        **HTTP_METRICS,
        "api_revocation_check_fail_open_total": "counter",
    },
    "worker": {
        "email_jobs_total": "counter",
        "email_send_duration_seconds": "histogram",
        "email_send_retries_total": "counter",
        "email_queue_depth": "gauge",
        "email_dead_letter_entries": "gauge",
    },
}


def exposed_types(text: str) -> dict[str, str]:
    """Metric name -> type from `# TYPE` lines; counters under their `_total` sample name."""
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name + "_total" if kind == "counter" and not name.endswith("_total") else name] = kind
    return types


def sample_names(text: str) -> set[str]:
    """Every series name in an exposition (`_bucket`, `_count`, `_sum`, `_total`, ...)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}
