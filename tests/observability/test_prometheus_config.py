"""infra/: the Prometheus configs and alert rules pass promtool (including the rules' unit tests),
and the alerts and the Grafana dashboard only query metrics the services really expose."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.observability.helpers import GRAFANA_DIR, PROMETHEUS_DIR, ROOT, promtool, sample_names

pytestmark = pytest.mark.prometheus

CONFIGS = ["prometheus.yml", "prometheus.local.yml"]
# Series that exist without any of our services: Prometheus' own and Traefik's (compose only).
EXTERNAL = re.compile(r"^(up|scrape_\w+|traefik_\w+)$")
FUNCTIONS_AND_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("config", CONFIGS)
def test_promtool_check_config(config: str) -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_unit_tests_pass() -> None:
    """alerts.test.yml feeds series to every alert: each fires when it should, not before."""
    result = promtool("test", "rules", str(PROMETHEUS_DIR / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_the_issue_s_alerts_exist_with_severity_and_help() -> None:
    rules = alert_rules()
    signals = {
        "service down": r"\bup\b.*== 0",
        "5xx ratio": r'status_class="5xx"',
        "p99 latency": r"histogram_quantile\(0\.99",
        "refresh reuse spike": r'auth_refresh_total\{result="reuse_detected"\}',
        "email failures": r"email_jobs_total\{result=~",
        "queue backlog": r"email_queue_depth",
        "rate-limit fail-open": r'outcome="fail_open"',
    }
    for signal, pattern in signals.items():
        assert any(re.search(pattern, rule["expr"]) for rule in rules.values()), signal
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_scrape_configs_cover_every_service() -> None:
    compose = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in load_yaml(PROMETHEUS_DIR / "prometheus.yml")["scrape_configs"]
    }
    local = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in load_yaml(PROMETHEUS_DIR / "prometheus.local.yml")["scrape_configs"]
    }
    assert compose["auth"] == ["auth:8001"] and compose["api"] == ["api:8002"]
    assert compose["worker"] == ["worker:9102"] and compose["traefik"] == ["traefik:8082"]
    from devstack.run import Ports

    ports = Ports()
    assert local == {
        "auth": [f"127.0.0.1:{ports.auth}"],
        "api": [f"127.0.0.1:{ports.api}"],
        "worker": [f"127.0.0.1:{ports.worker_metrics}"],
        "traefik": [f"127.0.0.1:{ports.ping}"],
    }
    # devstack's Traefik serves those metrics on that (internal) entry point, not the gateway.
    from devstack.run import traefik_command

    command = traefik_command(ports, environ={})
    assert f"--entryPoints.ops.address=127.0.0.1:{ports.ping}" in command
    assert "--metrics.prometheus=true" in command and "--metrics.prometheus.entryPoint=ops" in command


def test_compose_monitoring_profile_mounts_these_files() -> None:
    compose_file = ROOT / "compose.yaml"
    if not compose_file.exists():
        pytest.skip("compose.yaml not present")
    services = load_yaml(compose_file)["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert "monitoring" in prometheus["profiles"] and "monitoring" in grafana["profiles"]
    assert "./infra/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    dashboards = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")
    path = dashboards["providers"][0]["options"]["path"]
    assert f"./infra/grafana/dashboards:{path}:ro" in grafana["volumes"]
    # The worker's and Traefik's metrics ports are the ones scraped.
    assert services["worker"]["environment"]["WORKER_METRICS_PORT"] == "9102"
    assert any("--entryPoints.ops.address=:8082" in arg for arg in services["traefik"]["command"])
    assert "--metrics.prometheus=true" in services["traefik"]["command"]


# --- every queried metric exists --------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label matchers, ranges, grouping removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in FUNCTIONS_AND_KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA_DIR / "dashboards" / "blockbot.json").read_text())
    return data


def dashboard_exprs() -> list[tuple[str, str]]:
    exprs = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            exprs.append((panel["title"], target["expr"]))
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        match = re.match(r"label_values\((\w+)", query or "")
        if match:
            exprs.append((f"variable {variable['name']}", match.group(1)))
    return exprs


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket"
        '{job=~"$job", route!~"/metrics"}[$__rate_interval]))) > 1 and up == 0'
    )
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "up"}


def test_dashboard_is_valid_and_uses_the_provisioned_datasource() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    datasource = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasource["datasources"][0]["uid"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    queried = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert len(queried) >= 15
    for panel in queried:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def family(name: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", name)


def test_dashboard_covers_the_alerted_signals() -> None:
    used = {family(n) for _, expr in dashboard_exprs() for n in metric_names(expr)}
    alerted = {family(n) for rule in alert_rules().values() for n in metric_names(rule["expr"])}
    assert alerted - used == set(), "alerted but not on the dashboard"


def test_every_queried_metric_is_exposed(expositions: dict[str, str]) -> None:
    """The dashboard's and the alerts' metric names all appear in the services' /metrics."""
    exposed = set().union(*(sample_names(text) for text in expositions.values()))
    queries = dashboard_exprs() + [(name, rule["expr"]) for name, rule in alert_rules().items()]
    unknown = {
        (where, name)
        for where, expr in queries
        for name in metric_names(expr)
        if name not in exposed and not EXTERNAL.match(name)
    }
    assert not unknown, sorted(unknown)
