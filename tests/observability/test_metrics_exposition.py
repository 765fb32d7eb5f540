"""Every service's /metrics passes `promtool check metrics`, exposes the signals the dashboard and
alerts use, and never carries raw paths, ids or addresses in label values.

Real traffic first (sign-up, verification, logins, refresh, bearer calls with ids in the path,
unknown paths, an email sent by the real worker), so the labelled series exist."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from services.worker.metrics import MetricsServer
from shared.metrics import UNMATCHED_ROUTE
from tests.observability.conftest import (
    AUTH,
    PASSWORD,
    REQUIRED_METRICS,
    exposed_types,
    new_email,
    promtool,
    run_worker_burst,
)
from tests.observability.test_log_secrets import bearer, queued_token, refresh_cookie

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
LONG_HEX = re.compile(r"[0-9a-f]{16,}", re.I)
LONG_NUMBER = re.compile(r"\d{6,}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.I)
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


ROUTES: dict[str, set[str]] = {}


def route_templates(app: FastAPI) -> set[str]:
    """Every path template the app serves: its OpenAPI paths and its plain routes (/metrics, /docs)."""
    plain = {path for route in app.routes if isinstance(path := getattr(route, "path", None), str)}
    return plain | set(app.openapi()["paths"])


@pytest.fixture(scope="module")
async def expositions(start_services: Any) -> dict[str, str]:
    """The /metrics text of the auth app, the api app and the worker's metrics server."""
    async with start_services() as svc:
        ROUTES["auth"], ROUTES["api"] = route_templates(svc.auth), route_templates(svc.api)
        async with svc.client(svc.auth) as auth, svc.client(svc.api) as api:
            await drive_traffic(svc, auth, api)
            auth_text = (await auth.get("/metrics")).text
            api_text = (await api.get("/metrics")).text
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


async def drive_traffic(svc: Any, auth: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    email = new_email()
    body = {"email": email, "password": PASSWORD, "name": "Metrics", "org_name": "Metrics Org"}
    assert (await auth.post(f"{AUTH}/register", json=body)).status_code == 202
    token = await queued_token(svc.auth_settings, email, "verify_email")
    await run_worker_burst(svc.auth_settings)
    assert (await auth.post(f"{AUTH}/email/verify", json={"token": token})).status_code == 200
    assert (await auth.post(f"{AUTH}/login", json={"email": email, "password": "nope-nope-nope"})
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


@pytest.mark.parametrize("service", ["auth", "api", "worker"])
def test_promtool_check_metrics_passes(expositions: dict[str, str], service: str) -> None:
    result = promtool("check", "metrics", stdin=expositions[service])
    assert result.returncode == 0, f"{service}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("service", ["auth", "api", "worker"])
def test_required_signals_are_exposed_with_their_types(expositions: dict[str, str], service: str) -> None:
    types = exposed_types(expositions[service])
    missing = {name: kind for name, kind in REQUIRED_METRICS[service].items() if types.get(name) != kind}
    assert not missing, f"{service} lacks (or mistypes) {missing}"


@pytest.mark.parametrize("service", ["auth", "api", "worker"])
def test_label_values_are_bounded_never_raw_paths_ids_or_emails(
    expositions: dict[str, str], service: str
) -> None:
    bad: list[str] = []
    for family in text_string_to_metric_families(expositions[service]):
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label in ("le", "quantile"):
                    continue
                if (UUID.search(value) or LONG_HEX.search(value) or LONG_NUMBER.search(value)
                        or EMAIL.search(value) or "?" in value or len(value) > 100):
                    bad.append(f"{sample.name}{{{label}={value!r}}}")
                if label == "route" and not (value == UNMATCHED_ROUTE or value.startswith("/")):
                    bad.append(f"{sample.name}{{route={value!r}}}")
                if label == "method" and sample.name.startswith("http_") and value not in METHODS:
                    bad.append(f"{sample.name}{{method={value!r}}}")
                if label == "status_class" and not re.fullmatch(r"[1-5]xx", value):
                    bad.append(f"{sample.name}{{status_class={value!r}}}")
    assert not bad, bad


def test_routes_are_labelled_by_template(expositions: dict[str, str]) -> None:
    """In-process the registry is shared, so the auth and api series are in both texts."""
    routes: set[str] = set()
    for family in text_string_to_metric_families(expositions["api"]):
        if family.name == "http_requests":
            routes |= {s.labels["route"] for s in family.samples if "route" in s.labels}
    known = ROUTES["auth"] | ROUTES["api"] | {UNMATCHED_ROUTE}
    assert routes <= known, routes - known
    assert {"/api/v1/users/{user_id}", UNMATCHED_ROUTE, f"{AUTH}/login", "/metrics"} <= routes, routes
    assert any(r.startswith(f"{AUTH}/sessions/{{") for r in routes), routes
