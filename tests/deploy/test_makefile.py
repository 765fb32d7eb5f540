"""`make` and `make help` list every documented target, and only real ones."""

from __future__ import annotations

import re
import subprocess

import pytest

from devstack.run import ROOT

pytestmark = [pytest.mark.deploy, pytest.mark.slow]

MAKEFILE = (ROOT / "Makefile").read_text()


def _make(*args: str) -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_make_alone_prints_the_help() -> None:
    assert _make() == _make("help")


def test_help_lists_every_documented_target_and_each_is_a_rule() -> None:
    documented = re.findall(r"^## ([a-z-]+): (.+)$", MAKEFILE, re.MULTILINE)
    names = [name for name, _ in documented]
    assert {"run", "test", "docs", "help", "up", "down"} <= set(names)
    lines = _make("help").splitlines()
    assert lines[0].startswith("make TARGET")
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:]}
    assert listed == dict(documented)
    for name in names:
        assert re.search(rf"^{re.escape(name)}:", MAKEFILE, re.MULTILINE), f"{name} is not a rule"
