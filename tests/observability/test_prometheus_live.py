"""A real Prometheus (Debian's `prometheus` binary) scrapes the real local stack.

The stack is `python -m devstack.run` (what `make run` starts) on free ports; Prometheus runs
with infra/prometheus/prometheus.local.yml, its targets moved to those ports, and must find
every target up, load the alert rules without evaluation errors, and ingest the services'
metrics. Each process's own /metrics also passes `promtool check metrics` here: in-process
tests share one registry, these are the real per-process outputs.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml  # type: ignore[import-untyped]

from devstack.ports import free_port
from devstack.processes import stop_process
from devstack.run import LocalStack, Ports
from tests.observability.helpers import (
    PROMETHEUS_DIR,
    REQUIRED_METRICS,
    exposed_types,
    promtool,
    require_binary,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

STACK_ENV = {
    "ARGON2_MEMORY_KIB": "8192",
    "ARGON2_TIME_COST": "1",
    "ARGON2_PARALLELISM": "1",
    "LOG_LEVEL": "WARNING",
    # A stack of our own: never a server the caller's environment points at.
    "DATABASE_URL": "",
    "REDIS_URL": "",
}


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    require_binary("promtool")
    return require_binary("prometheus")


@pytest.fixture(scope="module")
def stack(prometheus_binary: str) -> Iterator[LocalStack]:
    with tempfile.TemporaryDirectory(prefix="bbobs-") as directory:
        local = LocalStack(Path(directory) / "stack", ports=Ports.free(), env=dict(STACK_ENV))
        local.start()
        try:
            local.wait_ready(timeout=180, parts=("auth", "api", "worker", "traefik"))
            yield local
        finally:
            local.stop()


def local_config(ports: Ports, rules: Path) -> dict[str, Any]:
    """infra/prometheus/prometheus.local.yml with the stack's ports and a fast scrape interval."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.local.yml").read_text())
    port_of = {"auth": ports.auth, "api": ports.api, "worker": ports.worker_metrics, "traefik": ports.ping}
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(rules)]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port_of[job['job_name']]}"]}]
    return config


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack, prometheus_binary: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bbprom-") as directory:
        root = Path(directory)
        config_file = root / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(local_config(stack.ports, PROMETHEUS_DIR / "alerts.yml")))
        checked = promtool("check", "config", str(config_file))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        port = free_port()
        log = (root / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert process.poll() is None, (root / "prometheus.log").read_text()[-3000:]
                try:
                    if http_get(f"{url}/-/ready", timeout=1)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            else:
                pytest.fail("prometheus not ready:\n" + (root / "prometheus.log").read_text()[-3000:])
            yield url
        finally:
            if process.poll() is None:
                stop_process(process, grace=20, group=True)
            log.close()


def api(url: str, path: str, **params: str) -> Any:
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    status, body = http_get(f"{url}/api/v1/{path}{query}")
    assert status == 200, body[:500]
    payload = orjson.loads(body)
    assert payload["status"] == "success", payload
    return payload["data"]


def test_prometheus_finds_every_target_of_the_local_stack_up(prometheus: str, stack: LocalStack) -> None:
    deadline = time.monotonic() + 60
    targets: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        targets = api(prometheus, "targets", state="active")["activeTargets"]
        if targets and all(t["health"] == "up" for t in targets):
            break
        time.sleep(0.5)
    summary = {t["labels"]["job"]: (t["health"], t["scrapeUrl"], t.get("lastError")) for t in targets}
    assert set(summary) == {"auth", "api", "worker", "traefik"}, summary
    assert all(health == "up" for health, _, _ in summary.values()), (summary, stack.log_tail(3000))

    # The scraped series arrive, labelled by job.
    result = api(prometheus, "query", query="count by (job) (up == 1)")["result"]
    assert {r["metric"]["job"] for r in result} == {"auth", "api", "worker", "traefik"}
    for job, metric in (
        ("auth", "http_requests_total"),
        ("api", "db_pool_connections"),
        ("worker", "email_queue_depth"),
        ("traefik", "traefik_config_reloads_total"),
    ):
        series = api(prometheus, "series", **{"match[]": f'{metric}{{job="{job}"}}'})
        assert series, f"no {metric} from {job}"


def test_alert_rules_load_and_evaluate_against_real_series(prometheus: str) -> None:
    deadline = time.monotonic() + 30
    rules: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        groups = api(prometheus, "rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and all(rule.get("health") == "ok" for rule in rules):
            break
        time.sleep(0.5)
    expected = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    names = {r["alert"] for g in expected["groups"] for r in g["rules"]}
    assert {rule["name"] for rule in rules} == names
    assert all(rule.get("health") == "ok" for rule in rules), [
        (rule["name"], rule.get("health"), rule.get("lastError")) for rule in rules
    ]
    # A healthy idle stack pages nobody.
    firing = [a for a in api(prometheus, "alerts")["alerts"] if a["state"] == "firing"]
    assert not firing, firing


def test_traefik_metrics_are_on_the_ops_entry_point_only(stack: LocalStack) -> None:
    status, body = http_get(f"http://127.0.0.1:{stack.ports.ping}/metrics")
    assert status == 200 and b"traefik_" in body
    status, body = http_get(f"http://127.0.0.1:{stack.ports.http}/metrics")
    assert status == 404 and b"traefik_" not in body


@pytest.mark.parametrize("service", ["auth", "api", "worker"])
def test_each_process_metrics_pass_promtool_and_carry_its_signals(stack: LocalStack, service: str) -> None:
    port = {"auth": stack.ports.auth, "api": stack.ports.api, "worker": stack.ports.worker_metrics}[service]
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    text = body.decode()
    result = promtool("check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    types = exposed_types(text)
    missing = {n: k for n, k in REQUIRED_METRICS[service].items() if types.get(n) != k}
    assert not missing, f"{service} lacks {missing}"
