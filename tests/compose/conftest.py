"""The Docker Compose deployment for real: images built, stack started, exercised, faulted.

Run by `.ci/run` (make compose-test), never by `make test`: it needs a Docker engine. One
compose project for the session (`bbci11`, or COMPOSE_TEST_PROJECT), on ports base..base+99
(base 21100, or COMPOSE_TEST_PORT_BASE; nothing else on the machine uses them). Two runs at once
need different names and bases; they then also get different backend subnets and image tags.
The env file is made by `make env`'s own code in a temporary directory. Tests run in file order
(test_1_... to test_7_...), each part timed; everything is removed at the end (`down -v`), also
when a test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.secrets import write_env_file
from tests.compose.stack import HTTP_PORT, PROJECT, SENDER, TEST_ENV, ComposeStack, build_image, docker_ready
from tests.compose.timings import FACTS, TIMINGS


@pytest.fixture(scope="session")
def stack() -> Iterator[ComposeStack]:
    docker_ready()
    with tempfile.TemporaryDirectory(prefix="bbcompose-") as directory:
        env_file = Path(directory) / ".env"
        write_env_file(env_file)  # what `make env` does
        compose = ComposeStack(env_file=env_file)
        compose.set_env(**TEST_ENV)
        everything = ComposeStack(
            env_file=env_file, files=["compose.yaml", "compose.prod.yaml"], profiles=["monitoring"]
        )
        everything.set_env(APP_BASE_URL="https://localhost", EMAIL_FROM=SENDER, PUBLIC_HOST="localhost")
        everything.down(volumes=True)  # leftovers of an interrupted run
        build_image(compose)
        compose.set_env(APP_BASE_URL=f"http://localhost:{HTTP_PORT}")
        try:
            yield compose
        finally:
            for service in ("migrate", "auth", "api", "worker", "traefik"):
                tail = [line[:400] for line in compose.logs(service).splitlines()[-10:]]
                print(f"--- {service} (last lines)\n" + "\n".join(tail))
            everything.down(volumes=True)
            leftovers = subprocess.run(
                ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            assert not leftovers, f"containers left after down -v: {leftovers}"


@pytest.fixture(scope="session")
def client(stack: ComposeStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30.0, cookies=None) as http:
        yield http


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS and not FACTS:
        return
    terminalreporter.section("compose test: timings")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{name:<55} {seconds:>7.1f} s")
    for name, value in FACTS.items():
        terminalreporter.write_line(f"{name:<55} {value}")
    target = os.environ.get("COMPOSE_TIMINGS_FILE")
    if target:
        Path(target).write_text(json.dumps({"seconds": TIMINGS, "facts": FACTS}, indent=2) + "\n")
