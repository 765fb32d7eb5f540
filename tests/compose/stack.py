"""The compose project the Compose test drives: its name, ports, subnet and image tag (each run
its own, from COMPOSE_TEST_PROJECT and COMPOSE_TEST_PORT_BASE), the settings it runs with, and
ComposeStack, the real Compose v2 binary pointed at it; plus what Compose does not report
(`docker inspect`) and the image build."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.compose_check import compose_binary
from tests.compose.timings import FACTS, timed

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("COMPOSE_TEST_PROJECT") or "bbci11"
PORT_BASE = int(os.environ.get("COMPOSE_TEST_PORT_BASE") or "21100")
# The image's tag too: a run must never start containers from another run's build.
IMAGE_TAG = "compose-test" if PROJECT == "bbci11" else f"compose-test-{PROJECT}"
HTTP_PORT, HTTPS_PORT = PORT_BASE + 80, PORT_BASE + 43
# compose.yaml pins the backend network's subnet (Traefik's fixed address): another base, another one.
BACKEND_NET = "172.30.0" if PORT_BASE == 21100 else f"172.30.{PORT_BASE // 100 % 256}"
PROMETHEUS_PORT, GRAFANA_PORT = PORT_BASE + 90, PORT_BASE + 30
# Fast password hashing, a one-second refresh grace (reuse observable quickly), and per-IP and
# per-email auth limits raised: every request of the suite comes from one address.
TEST_ENV = {
    "COMPOSE_PROJECT_NAME": PROJECT,
    "TAG": IMAGE_TAG,
    "HTTP_PORT": str(HTTP_PORT),
    "HTTPS_PORT": str(HTTPS_PORT),
    "PROMETHEUS_PORT": str(PROMETHEUS_PORT),
    "GRAFANA_PORT": str(GRAFANA_PORT),
    "BACKEND_NET": BACKEND_NET,
    "ARGON2_MEMORY_KIB": "8192",
    "ARGON2_TIME_COST": "1",
    "ARGON2_PARALLELISM": "1",
    "REFRESH_REUSE_GRACE_SECONDS": "1",
    "RATELIMIT_AUTH_IP_PER_MINUTE": "100000",
    "RATELIMIT_AUTH_EMAIL_PER_HOUR": "100000",
    "RATELIMIT_AUTH_REFRESH_IP_PER_MINUTE": "100000",
    "RATELIMIT_AUTH_MAILS_PER_ADDRESS_PER_HOUR": "100000",
    "RATELIMIT_AUTH_MAILS_PER_ADDRESS_NETWORK_PER_HOUR": "100000",
    "LOG_LEVEL": "WARNING",
}
SENDER = "BlockBot <no-reply@blockbot-ci.net>"


@dataclass
class ComposeStack:
    """One compose project driven through the real Compose v2 binary."""

    env_file: Path
    files: list[str] = field(default_factory=lambda: ["compose.yaml"])
    profiles: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{HTTP_PORT}"

    def args(self) -> list[str]:
        args = [
            compose_binary().as_posix(),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(self.env_file),
            "-p",
            PROJECT,
        ]
        for name in self.files:
            args += ["-f", name]
        for profile in self.profiles:
            args += ["--profile", profile]
        return args

    def run(self, *args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.args(), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.env_file.parent)},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"compose {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def make(self, target: str, *variables: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """A Makefile target as an operator runs it, pointed at this project: its env file (which
        names the project) and the real Compose v2 binary."""
        result = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(ROOT),
                target,
                f"DOCKER_COMPOSE={compose_binary().as_posix()}",
                f"ENV_FILE={self.env_file}",
                *(["PROD=1"] if "compose.prod.yaml" in self.files else []),
                f"PROFILES={' '.join(self.profiles)}",
                *variables,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.env_file.parent)},
        )
        assert result.returncode == 0, (
            f"make {target} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result

    def set_env(self, **values: str) -> None:
        """Set (or replace) variables in the env file."""
        lines = [
            line for line in self.env_file.read_text().splitlines() if line.split("=", 1)[0] not in values
        ]
        lines += [f"{key}={value}" for key, value in values.items()]
        self.env_file.write_text("\n".join(lines) + "\n")

    def up(self, *args: str) -> float:
        started = time.monotonic()
        self.run("up", "-d", "--wait", "--wait-timeout", "300", "--no-build", *args)
        return time.monotonic() - started

    def down(self, *, volumes: bool) -> None:
        self.run("down", "--remove-orphans", "--timeout", "20", *(["-v"] if volumes else []))

    def ps(self) -> list[dict[str, Any]]:
        out = self.run("ps", "--all", "--format", "json").stdout.strip()
        if out.startswith("["):
            rows: list[dict[str, Any]] = json.loads(out)
            return rows
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def containers(self, service: str) -> list[str]:
        return self.run("ps", "-q", service).stdout.split()

    def exec(
        self, service: str, *command: str, check: bool = True, index: int = 1, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.run("exec", "-T", "--index", str(index), service, *command, check=check, timeout=timeout)

    def logs(self, service: str) -> str:
        result = self.run("logs", "--no-color", "--no-log-prefix", service, check=False)
        return result.stdout + result.stderr

    def psql(self, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run SQL as the postgres superuser inside the postgres container; tab-separated rows
        on stdout. check=False for SQL that must fail: the caller reads the error on stderr."""
        return self.exec(
            "postgres",
            "psql",
            "-U",
            "postgres",
            "-d",
            "blockbot",
            "-AtF",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
            check=check,
        )

    def emails(self) -> list[dict[str, Any]]:
        """Every message in the worker's outbox (read with `docker compose exec worker`)."""
        script = (
            "import json, pathlib; print(json.dumps([dict(json.loads(p.read_text()), _file=p.name)"
            " for p in sorted(pathlib.Path('/data/outbox').glob('*.json'))]))"
        )
        for _ in range(30):
            result = self.exec("worker", "python", "-c", script, check=False)
            if result.returncode == 0:
                messages: list[dict[str, Any]] = json.loads(result.stdout)
                return messages
            time.sleep(1)  # the worker is restarting
        raise AssertionError(f"cannot read the outbox: {result.stderr}")

    def wait_for_email(self, to: str, contains: str = "", timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.emails()):
                recipients = message["to"] if isinstance(message["to"], list) else [message["to"]]
                if to in recipients and contains in message["text"]:
                    found: dict[str, Any] = message
                    return found
            time.sleep(0.5)
        raise AssertionError(f"no email to {to} containing {contains!r} within {timeout}s")


def docker_ready() -> None:
    result = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, "no Docker engine: .ci/run starts one (see README)\n" + result.stderr


def docker_inspect(name: str, template: str) -> str:
    """`docker inspect -f template name`: what Compose does not report (a container's mounts or
    main process, an image's size)."""
    return subprocess.run(
        ["docker", "inspect", "-f", template, name], capture_output=True, text=True, check=True
    ).stdout.strip()


def build_image(compose: ComposeStack) -> None:
    """The project's image, built by Compose as `make build` does (no registry involved: the
    Dockerfile needs no BuildKit frontend image)."""
    started = time.monotonic()
    compose.run("build", "migrate", timeout=1500)
    timed("build blockbot-core image", started)
    size = docker_inspect(f"blockbot-core:{IMAGE_TAG}", "{{.Size}}")
    FACTS["blockbot-core image size"] = f"{int(size) / 1e6:.0f} MB"
