"""`make run`'s process table (devstack/run.py), without starting anything: who gets which
credentials, and what Traefik is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.run import (
    Ports,
    StackRunner,
    graceful_stop_seconds,
    traefik_command,
    traefik_tracing_flags,
)

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


def runner(tmp_path: Path) -> StackRunner:
    stack = StackRunner(root=tmp_path, ports=Ports())
    stack.secrets = {"AUTH_DB_PASSWORD": "auth-pw", "API_DB_PASSWORD": "api-pw", "JWT_PRIVATE_KEYS": "seed"}
    stack.admin_url = "postgresql://postgres@127.0.0.1:55432/blockbot"
    stack.redis_service_url = "redis://127.0.0.1:56379/0"
    return stack


def test_worker_gets_no_database_credentials(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:admin-pw@db.example/blockbot")
    specs = {spec.name: spec for spec in runner(tmp_path).process_specs()}
    worker = specs["worker"].env
    assert "DATABASE_URL" not in worker  # not the api role's, not the inherited admin URL
    assert not any(
        "admin-pw" in value or "api-pw" in value or "auth-pw" in value for value in worker.values()
    )
    assert "JWT_PRIVATE_KEYS" not in worker
    assert "//blockbot_auth:auth-pw@" in specs["auth"].env["DATABASE_URL"]
    assert "//blockbot_api:api-pw@" in specs["api"].env["DATABASE_URL"]


def test_traefik_metrics_and_ping_share_the_internal_entry_point() -> None:
    ports = Ports(http=18080, ping=18081)
    command = traefik_command(ports, environ={})
    assert "--entryPoints.web.address=127.0.0.1:18080" in command
    assert "--entryPoints.ops.address=127.0.0.1:18081" in command
    assert "--ping.entryPoint=ops" in command
    assert "--metrics.prometheus.entryPoint=ops" in command
    assert not any(flag.startswith("--tracing") for flag in command)  # off by default


def test_traefik_tracing_follows_the_standard_otel_variables() -> None:
    assert traefik_tracing_flags({}) == []
    flags = traefik_tracing_flags({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert "--tracing=true" in flags
    assert "--tracing.otlp.http.endpoint=http://collector:4318/v1/traces" in flags
    assert (
        traefik_tracing_flags(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
        )
        == []
    )
    assert (
        traefik_tracing_flags(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "console"}
        )
        == []
    )
    assert (
        traefik_tracing_flags({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
        == []
    )
    specific = traefik_tracing_flags(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/custom",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
        }
    )
    assert "--tracing.otlp.http.endpoint=http://c:4318/custom" in specific
    assert "--tracing.sampleRate=0.25" in specific


def test_processes_get_the_workers_job_timeout_before_sigkill() -> None:
    from services.worker.main import job_timeout_seconds
    from shared.settings import load_settings

    settings = load_settings(env="test", redis_url="redis://127.0.0.1:1/0")
    assert graceful_stop_seconds({}) > job_timeout_seconds(settings)
    assert graceful_stop_seconds({"EMAIL_SEND_TIMEOUT_SECONDS": "30"}) > 35


def test_worker_metrics_bind_loopback_under_make_run(tmp_path: Path) -> None:
    specs = {spec.name: spec for spec in runner(tmp_path).process_specs()}
    assert specs["worker"].env["WORKER_METRICS_HOST"] == "127.0.0.1"
    assert all("0.0.0.0" not in arg for spec in specs.values() for arg in spec.argv)
