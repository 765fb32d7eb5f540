"""Helpers of the observability tests: the services under test, their logs, metrics and routes."""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from shared.logging import JsonFormatter
from shared.redis import create_redis, email_queue_name
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
        [require_binary("promtool"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


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
        return [orjson.loads(line) for line in self.text.splitlines() if line.strip()]


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
    """Every series name an exposition declares or carries (`_bucket`, `_count`, `_sum`, ...).

    Declared names count too: a labelled metric nothing has incremented yet has no sample.
    """
    from prometheus_client.parser import text_string_to_metric_families

    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    suffixes = {
        "counter": ("", "_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    for name, kind in exposed_types(text).items():
        base = name.removesuffix("_total") if kind == "counter" else name
        names |= {base + suffix for suffix in suffixes.get(kind, ("",))}
    return names


async def queued_token(settings: Settings, to: str, template: str) -> str:
    """The one-time token in the newest queued `template` email for `to` (from the real queue)."""
    redis = create_redis(settings)
    try:
        found: list[tuple[int, str]] = []
        for job_id in await redis.zrange(email_queue_name(settings), 0, -1):
            data = await redis.get(b"arq:job:" + job_id)
            if data is None:
                continue
            job = orjson.loads(data)
            kwargs = job["k"]
            if kwargs["to"] == to and kwargs["template"] == template:
                found.append((job["et"], kwargs["context"]["link"]))
    finally:
        await redis.aclose()
    assert found, f"no {template} email queued for {to}"
    link = sorted(found)[-1][1]
    match = re.search(r"#token=([A-Za-z0-9_-]+)$", link)
    assert match, "the link carries its token in the fragment"
    return match.group(1)


def refresh_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "bb_refresh":
            return rest.split(";", 1)[0]
    raise AssertionError(f"no refresh cookie in {response.status_code} {response.text}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ROUTES: dict[str, set[str]] = {}


# Route labels already in the process-global prometheus_client registry before this suite's
# traffic: other suites' throwaway apps (tests/shared's /things, /boom, ...) share it.
FOREIGN_ROUTES: set[str] = set()


def registry_route_labels() -> set[str]:
    """Every `route` label value of http_requests_total in the process-global registry."""
    from prometheus_client import REGISTRY

    return {
        sample.labels["route"]
        for family in REGISTRY.collect()
        if family.name == "http_requests"
        for sample in family.samples
        if "route" in sample.labels
    }


def route_templates(app: FastAPI) -> set[str]:
    """Every path template the app serves: its OpenAPI paths and its plain routes (/metrics, /docs)."""
    plain = {path for route in app.routes if isinstance(path := getattr(route, "path", None), str)}
    return plain | set(app.openapi()["paths"])


async def drive_traffic(svc: Any, auth: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    email = new_email()
    body = {"email": email, "password": PASSWORD, "name": "Metrics", "org_name": "Metrics Org"}
    assert (await auth.post(f"{AUTH}/register", json=body)).status_code == 202
    token = await queued_token(svc.auth_settings, email, "verify_email")
    await run_worker_burst(svc.auth_settings)
    assert (
        await auth.post(f"{AUTH}/email/verify", json={"token": token, "password": PASSWORD})
    ).status_code == 200
    assert (
        await auth.post(f"{AUTH}/login", json={"email": email, "password": "nope-nope-nope"})
    ).status_code == 401
    r = await auth.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200
    access = r.json()["access_token"]
    auth.cookies.clear()
    r = await auth.post(f"{AUTH}/refresh", headers={"Cookie": f"bb_refresh={refresh_cookie(r)}"})
    assert r.status_code == 200
    auth.cookies.clear()
    assert (await auth.post(f"{AUTH}/magic-link", json={"email": email})).status_code == 202
    # Ids in paths, matched and unmatched routes, errors: labels must stay templates.
    some_id = uuid.uuid4()
    assert (await auth.delete(f"{AUTH}/sessions/{some_id}", headers=bearer(access))).status_code == 404
    assert (await api.get(f"/api/v1/users/{some_id}", headers=bearer(access))).status_code == 404
    assert (await api.get("/api/v1/users", headers=bearer(access))).status_code == 200
    assert (await api.get(f"/api/v1/users/{some_id}/no/such/thing?email={email}")).status_code == 404
    assert (await api.get(f"/api/v1/me/{some_id}")).status_code in (404, 405)
    assert (await api.get("/api/v1/me")).status_code == 401
    assert (await auth.get(f"/{email}/{some_id}")).status_code == 404
