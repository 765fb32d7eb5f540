"""What the Compose test reports at the end of its session (and writes to COMPOSE_TIMINGS_FILE):
how long each part took, and facts measured on the way (image size, ...). Tests and the
conftest's summary hook share these two dicts: import them from here, never copy them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.compose.stack import ComposeStack

TIMINGS: dict[str, float] = {}
FACTS: dict[str, str] = {}


def timed(name: str, started: float) -> float:
    """Record how long part `name` took (printed at the end of the session)."""
    TIMINGS[name] = round(time.monotonic() - started, 1)
    return TIMINGS[name]


def part_timer(name: str) -> Any:
    """A module-scoped autouse fixture recording how long the module's tests took together."""

    @pytest.fixture(scope="module", autouse=True)
    def _timer(stack: ComposeStack) -> Iterator[None]:
        started = time.monotonic()
        yield
        timed(name, started)

    return _timer
