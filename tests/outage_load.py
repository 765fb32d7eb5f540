"""Concurrent traffic for the outage tests: who answered what, how fast, in which phase.

Latency is only ever compared with generous bounds, by counting samples over them: the figures
themselves are printed (run with `-s`) for the record, never asserted tightly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Sample:
    phase: str
    started: float
    latency: float
    response: httpx.Response


@dataclass
class Load:
    """`workers` tasks calling `request()` back to back until stopped, tagging the current phase."""

    request: Callable[[], Awaitable[httpx.Response]]
    workers: int = 8
    phase: str = "before"
    samples: list[Sample] = field(default_factory=list)
    _stop: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _worker(self) -> None:
        while not self._stop:
            phase, started = self.phase, time.monotonic()
            response = await self.request()
            self.samples.append(Sample(phase, started, time.monotonic() - started, response))
            await asyncio.sleep(0.01)

    def start(self) -> Load:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        return self

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)

    async def until(self, predicate: Callable[[Sample], bool], *, within: float) -> float:
        """Wait until a sample started after now satisfies `predicate`; return how long it took."""
        since = time.monotonic()
        while time.monotonic() - since < within:
            if any(s.started >= since and predicate(s) for s in self.samples):
                return time.monotonic() - since
            await asyncio.sleep(0.05)
        raise AssertionError(f"no sample satisfied the condition within {within} s")

    def of(self, phase: str) -> list[Sample]:
        return [s for s in self.samples if s.phase == phase]

    def statuses(self, phase: str | None = None) -> dict[int, int]:
        counts: dict[int, int] = {}
        for s in self.samples if phase is None else self.of(phase):
            counts[s.response.status_code] = counts.get(s.response.status_code, 0) + 1
        return counts

    def worst(self, phase: str) -> float:
        return max((s.latency for s in self.of(phase)), default=0.0)

    def over(self, phase: str, seconds: float) -> int:
        return sum(1 for s in self.of(phase) if s.latency > seconds)

    def report(self, name: str) -> str:
        phases = dict.fromkeys(s.phase for s in self.samples)
        parts = [f"{p}: {self.statuses(p)} worst {self.worst(p) * 1000:.0f} ms" for p in phases]
        line = f"[figures] {name}: " + "; ".join(parts)
        print(line)
        return line
