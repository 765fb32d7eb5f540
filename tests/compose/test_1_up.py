"""Part 1: `up --wait` of the default profile from nothing, and what a real run found wrong.

Findings of issue 11 guarded here: 3 (no host ports for PostgreSQL/Redis), 4 (the image builds
with no registry: no BuildKit frontend image), 5 (the image holds exactly the locked
versions), 6 (explicit schema grants, no warning), 8 (no alias-header warning from Traefik),
9 (no Docker socket in Traefik).
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.compose.stack import HTTP_PORT, IMAGE_TAG, ROOT, ComposeStack, docker_inspect
from tests.compose.timings import FACTS, timed

pytestmark = [pytest.mark.compose, pytest.mark.slow]
LONG_RUNNING = {"postgres", "redis", "auth", "api", "worker", "traefik", "gateway-problems"}


def test_up_wait_from_nothing(stack: ComposeStack) -> None:
    started = time.monotonic()
    stack.up()
    timed("part 1: up --wait (default profile, from nothing)", started)
    rows = {row["Service"]: row for row in stack.ps()}
    assert LONG_RUNNING | {"migrate"} <= set(rows), rows
    for service in LONG_RUNNING:
        assert rows[service]["State"] == "running" and rows[service]["Health"] == "healthy", rows[service]
    assert rows["migrate"]["State"] == "exited" and rows["migrate"]["ExitCode"] == 0, rows["migrate"]


def test_postgres_and_redis_publish_no_host_port(stack: ComposeStack) -> None:
    """Finding 3: their network is internal, so nothing is published; the documented way in
    is `docker compose exec`."""
    rows = {row["Service"]: row for row in stack.ps()}
    for service in ("postgres", "redis"):
        assert not [p for p in rows[service].get("Publishers") or [] if p.get("PublishedPort")], rows[service]
    assert stack.psql("SELECT 1").stdout.strip() == "1"
    assert stack.exec("redis", "redis-cli", "ping").stdout.strip() == "PONG"
    published = {
        p["PublishedPort"]
        for row in rows.values()
        for p in row.get("Publishers") or []
        if p.get("PublishedPort")
    }
    assert published == {HTTP_PORT}, published  # only the gateway


def test_schema_privileges_are_explicit(stack: ComposeStack) -> None:
    """Finding 6: the owner role owns the schema, PUBLIC has nothing on it, auth and api have
    USAGE by explicit grant, and the migrate job printed no 'no privileges were granted'."""
    owner = stack.psql("SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'public'").stdout.strip()
    assert owner == "blockbot_owner"
    grantees = stack.psql(
        "SELECT coalesce(g.rolname, 'PUBLIC'), a.privilege_type FROM pg_namespace n, "
        "aclexplode(n.nspacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee WHERE n.nspname = 'public'"
    ).stdout.splitlines()
    assert "blockbot_auth\tUSAGE" in grantees and "blockbot_api\tUSAGE" in grantees, grantees
    assert not [row for row in grantees if row.startswith("PUBLIC")], grantees
    logs = stack.logs("migrate") + stack.logs("postgres")
    assert "no privileges were granted" not in logs, logs[-2000:]


def test_traefik_has_no_docker_socket_and_no_warnings(stack: ComposeStack) -> None:
    """Findings 8 and 9: nothing from the host's Docker socket is mounted into the proxy, and
    Traefik starts without warnings (the ops entry point has the alias-header setting)."""
    container = stack.containers("traefik")[0]
    mounts = json.loads(docker_inspect(container, "{{json .Mounts}}"))
    assert not [m for m in mounts if "docker.sock" in m.get("Source", "")], mounts
    logs = stack.logs("traefik")
    pattern = r'level=(warn|error)|"level":"(warn|error)"| WRN | ERR '
    warnings = [line for line in logs.splitlines() if re.search(pattern, line)]
    assert not warnings, warnings


def test_image_holds_exactly_the_locked_versions(stack: ComposeStack) -> None:
    """Finding 5: every installed distribution (direct or not) is pinned in the lock file."""
    locked = dict(
        re.findall(
            r"^([A-Za-z0-9_.\-]+)==(\S+)", (ROOT / "infra/requirements.lock").read_text(), flags=re.MULTILINE
        )
    )
    locked = {name.lower().replace("_", "-").replace(".", "-"): version for name, version in locked.items()}
    frozen = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "/opt/venv/bin/pip",
            f"blockbot-core:{IMAGE_TAG}",
            "list",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {
        p["name"].lower().replace("_", "-").replace(".", "-"): p["version"]
        for p in json.loads(frozen)
        if p["name"] not in ("pip", "setuptools")
    }
    assert installed, frozen
    unlocked = {name: version for name, version in installed.items() if locked.get(name) != version}
    assert not unlocked, f"installed but not locked at that version: {unlocked}"
    FACTS["distributions in the image (all locked with hashes)"] = str(len(installed))


def test_dockerfile_needs_no_frontend_image() -> None:
    """Finding 4: no `# syntax=` line (BuildKit would pull docker/dockerfile from Docker Hub);
    the image above was built on a host without any registry."""
    assert not re.search(r"^#\s*syntax\s*=", (ROOT / "infra/Dockerfile").read_text(), flags=re.MULTILINE)
