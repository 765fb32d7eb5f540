"""Observability test harness: the real auth, api and worker in-process, spans in memory,
every log line captured, and the Prometheus tools (Debian's `prometheus` package).

`promtool` and `prometheus` are system binaries, not Python packages. Without them the tests
that need them are skipped with the reason, except in CI (`CI` or `REQUIRE_PROMTOOL=1`), where
a missing binary is a failure: CI installs the package (`.ci/run`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.access_tokens import b64url_encode, raw_public_bytes
from shared.settings import Settings
from tests.observability.helpers import (
    FOREIGN_ROUTES,
    GENEROUS,
    ROUTES,
    Services,
    drive_traffic,
    registry_route_labels,
    route_templates,
)


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
            "api",
            redis_key_prefix=prefix,
            jwt_public_keys=[b64url_encode(raw_public_bytes(key.public_key))],
        )
        auth = create_auth_app(auth_settings, keyring=KeyRing((key,)))
        api = create_api_app(api_settings)
        async with auth.router.lifespan_context(auth), api.router.lifespan_context(api):
            yield Services(auth, api, auth_settings, api_settings)

    return start


@pytest.fixture(scope="session")
async def expositions(start_services: Any) -> dict[str, str]:
    """The /metrics text of the auth app, the api app and the worker's metrics server."""
    async with start_services() as svc:
        ROUTES["auth"], ROUTES["api"] = route_templates(svc.auth), route_templates(svc.api)
        FOREIGN_ROUTES.clear()
        FOREIGN_ROUTES.update(registry_route_labels() - ROUTES["auth"] - ROUTES["api"])
        async with svc.client(svc.auth) as auth, svc.client(svc.api) as api:
            await drive_traffic(svc, auth, api)
            auth_text = (await auth.get("/metrics")).text
            api_text = (await api.get("/metrics")).text
        from services.worker.metrics import MetricsServer

        server = MetricsServer(0, host="127.0.0.1")
        await server.start()
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
        finally:
            await server.close()
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain;")
    return {"auth": auth_text, "api": api_text, "worker": response.text}
