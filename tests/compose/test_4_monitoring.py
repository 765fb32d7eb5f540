"""Part 4: `--profile monitoring`: Prometheus scrapes every target and loads the alert rules.

Grafana has no Debian package: when its image is not on this host (the air-gapped CI), the
profile is started without it and the summary says so.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.compose.stack import PROMETHEUS_PORT, ROOT, ComposeStack
from tests.compose.timings import FACTS, part_timer

pytestmark = [pytest.mark.compose, pytest.mark.slow]
_part = part_timer("part 4: monitoring profile")
GRAFANA_IMAGE = "grafana/grafana:12.2.1"  # compose.yaml's (checked below)
JOBS = {"auth", "api", "worker", "traefik", "prometheus"}


def prometheus(path: str) -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{PROMETHEUS_PORT}{path}", timeout=10.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["data"]
    return body


def test_prometheus_scrapes_every_target_and_loads_the_rules(stack: ComposeStack) -> None:
    has_grafana = (
        subprocess.run(
            ["docker", "image", "inspect", GRAFANA_IMAGE], capture_output=True, check=False
        ).returncode
        == 0
    )
    assert f"image: {GRAFANA_IMAGE}\n" in (ROOT / "compose.yaml").read_text()
    services = ["prometheus", "grafana"] if has_grafana else ["prometheus"]
    FACTS["part 4: grafana"] = (
        "started"
        if has_grafana
        else f"not started: {GRAFANA_IMAGE} is not on this host (no registry) and Grafana has no "
        "Debian package, so make local-images builds none; the profile runs without it"
    )
    stack.profiles = ["monitoring"]
    try:
        stack.up(*services)
        deadline = time.monotonic() + 120  # a scrape interval is 15 s
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            targets = prometheus("/api/v1/targets")["activeTargets"]
            health = {target["labels"]["job"]: target["health"] for target in targets}
            if set(health) >= JOBS and set(health.values()) == {"up"}:
                break
            time.sleep(3)
        assert set(health) >= JOBS and set(health.values()) == {"up"}, health
        groups = prometheus("/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert rules and all(rule["health"] == "ok" for rule in rules), groups
        FACTS["part 4: prometheus targets up / rules loaded"] = f"{len(health)} / {len(rules)}"
    finally:
        stack.run("rm", "-fsv", *services)
        stack.profiles = []
