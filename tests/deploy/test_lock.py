"""infra/requirements.lock: every runtime distribution pinned with hashes (finding 5 of issue 11).

Offline consistency here; `make lock-check` (in .ci/run) re-resolves with uv and fails when the
lock is stale.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "infra" / "requirements.lock"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    pins: dict[str, str] = {}
    for entry in entries:
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", entry)
        if match:
            assert "--hash=sha256:" in entry, entry
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def test_every_direct_dependency_is_locked_at_its_pin() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = locked()
    for line in dependencies:
        requirement = Requirement(line)
        pinned = pins.get(canonical(requirement.name))
        assert pinned and requirement.specifier.contains(pinned), (line, pinned)
    assert len(pins) > len(dependencies)  # the transitive ones too


def test_the_image_installs_from_the_lock_only() -> None:
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    assert "pip install --no-deps --require-hashes -r requirements.lock" in dockerfile
    assert "pyproject.toml" not in dockerfile
