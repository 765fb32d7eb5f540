"""Every service's /metrics passes `promtool check metrics`, exposes the signals the dashboard and
alerts use, and never carries raw paths, ids or addresses in label values.

Real traffic first (sign-up, verification, logins, refresh, bearer calls with ids in the path,
unknown paths, an email sent by the real worker), so the labelled series exist."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import UNMATCHED_ROUTE
from tests.observability.helpers import (
    AUTH,
    FOREIGN_ROUTES,
    REQUIRED_METRICS,
    ROUTES,
    exposed_types,
    promtool,
)

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
LONG_HEX = re.compile(r"[0-9a-f]{16,}", re.I)
LONG_NUMBER = re.compile(r"\d{6,}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.I)
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


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
                if (
                    UUID.search(value)
                    or LONG_HEX.search(value)
                    or LONG_NUMBER.search(value)
                    or EMAIL.search(value)
                    or "?" in value
                    or len(value) > 100
                ):
                    bad.append(f"{sample.name}{{{label}={value!r}}}")
                if label == "route" and not (value == UNMATCHED_ROUTE or value.startswith("/")):
                    bad.append(f"{sample.name}{{route={value!r}}}")
                if label == "method" and sample.name.startswith("http_") and value not in METHODS:
                    bad.append(f"{sample.name}{{method={value!r}}}")
                if label == "status_class" and not re.fullmatch(r"[1-5]xx", value):
                    bad.append(f"{sample.name}{{status_class={value!r}}}")
    assert not bad, bad


def test_routes_are_labelled_by_template(expositions: dict[str, str]) -> None:
    """Every route label is a template the auth or api app declares, or the unmatched marker.

    In-process the registry is shared, so the auth and api series are in both texts, and so are
    the series of other suites' throwaway apps (tests/shared registers /things, /boom, ...):
    labels that were already in the registry before this suite's traffic and are not ours are
    set aside, by name, and nothing else. A raw path our traffic produced (an id, an email, an
    unknown path outside /api/v1) is new, so it still fails here."""
    routes: set[str] = set()
    for family in text_string_to_metric_families(expositions["api"]):
        if family.name == "http_requests":
            routes |= {s.labels["route"] for s in family.samples if "route" in s.labels}
    known = ROUTES["auth"] | ROUTES["api"] | {UNMATCHED_ROUTE}
    unexplained = routes - known - FOREIGN_ROUTES
    assert not unexplained, unexplained
    # Nothing under our prefix is excused as foreign: those must be our own templates.
    assert not {r for r in routes if r.startswith("/api/v1")} - known, routes - known
    assert {"/api/v1/users/{user_id}", UNMATCHED_ROUTE, f"{AUTH}/login", "/metrics"} <= routes, routes
    assert any(r.startswith(f"{AUTH}/sessions/{{") for r in routes), routes


def test_the_flows_are_counted_with_their_labels(expositions: dict[str, str]) -> None:
    """The traffic above shows up as the labelled series the alerts and dashboard query."""
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for text in expositions.values()
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def seen(name: str, **labels: str) -> bool:
        return any(
            n == name and set(labels.items()) <= set(lbls) and value > 0
            for (n, lbls), value in samples.items()
        )

    assert seen("auth_logins_total", result="success")
    assert seen("auth_logins_total", result="invalid_credentials")
    assert seen("auth_refresh_total", result="rotated")
    assert seen("auth_magic_links_total", event="issued")
    assert seen("email_jobs_total", template="verify_email", result="sent")
    assert seen("ratelimit_decisions_total", outcome="allowed")
    assert seen("http_requests_total", route=f"{AUTH}/login", method="POST", status_class="4xx")
    assert seen("http_requests_total", route="/api/v1/users/{user_id}", method="GET", status_class="4xx")
    assert seen("http_request_duration_seconds_count", route="/api/v1/users", method="GET")
