"""Each test module declares its own markers (pyproject declares the names): the suites that start
whole stacks or processes say so, so `make test-fast` (`-m "not slow"`) never runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# Where a module's tests start stacks, containers or processes: the markers it must carry.
REQUIRED = {
    "e2e": ("e2e", "slow"),
    "deploy": ("deploy", "slow"),
    "compose": ("compose", "slow"),
    "ops": ("slow",),
}


def _modules() -> list[tuple[Path, tuple[str, ...]]]:
    return [
        (module, marks)
        for folder, marks in REQUIRED.items()
        for module in sorted((TESTS / folder).rglob("test_*.py"))
    ]


@pytest.mark.parametrize(
    ("module", "marks"), _modules(), ids=lambda value: str(value) if isinstance(value, Path) else ""
)
def test_slow_suites_declare_their_markers(module: Path, marks: tuple[str, ...]) -> None:
    declared = next((line for line in module.read_text().splitlines() if line.startswith("pytestmark")), "")
    missing = [mark for mark in marks if f"pytest.mark.{mark}" not in declared]
    assert not missing, f"{module.relative_to(TESTS)}: pytestmark lacks {missing}"
