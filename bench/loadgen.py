"""An HTTP/1.1 load generator for the capacity benchmark, run as its own process (its CPU is
never counted as the stack's).

    python bench/loadgen.py < spec.json   # prints one JSON line: the result

Keep-alive connections over raw asyncio streams (a few microseconds of client CPU per request).
Two modes:

* `closed`: `connections` clients send back to back for `seconds` (saturation);
* `rate`: requests are scheduled at `rate` per second and picked up by `connections` clients;
  latency counts from the scheduled time, so a server falling behind shows it (no coordinated
  omission).

Per request the body is the next of `bodies` (round robin, `{n}` replaced by a counter unique
in the run), and the refresh cookie is, by `cookie_mode`: none; `chain` (each connection holds
one from `cookies` and replaces it with the one each response sets: a rotating refresh token);
`consume` (each request takes the next of `cookies`: a logout per session).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sys
import time
from typing import Any

_SET_COOKIE = re.compile(rb"\r\nset-cookie: ([A-Za-z0-9_-]+)=([^;\r\n]*)", re.IGNORECASE)


class Spec:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.host: str = raw["host"]
        self.port: int = raw["port"]
        self.method: str = raw["method"]
        self.path: str = raw["path"]
        self.headers: dict[str, str] = raw.get("headers", {})
        self.bodies: list[str] = raw.get("bodies", [])
        self.cookie_name: str = raw.get("cookie_name", "bb_refresh")
        self.cookie_mode: str = raw.get("cookie_mode", "none")
        self.cookies: list[str] = raw.get("cookies", [])
        self.mode: str = raw["mode"]
        self.connections: int = raw["connections"]
        self.seconds: float = raw["seconds"]
        self.rate: float = raw.get("rate", 0.0)
        self.ok: set[int] = set(raw.get("ok", [200]))


class Run:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.counter = itertools.count()
        self.consumable = iter(spec.cookies)
        self.latencies: list[float] = []
        self.errors: dict[int, int] = {}
        self.exhausted = False

    def request(self, cookie: str | None) -> bytes:
        spec = self.spec
        n = next(self.counter)
        lines = [f"{spec.method} {spec.path} HTTP/1.1", f"Host: {spec.host}:{spec.port}"]
        lines += [f"{k}: {v}" for k, v in spec.headers.items()]
        body = b""
        if spec.bodies:
            body = spec.bodies[n % len(spec.bodies)].replace("{n}", str(n)).encode()
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        elif spec.method == "POST":
            lines.append("Content-Length: 0")
        if cookie is not None:
            lines.append(f"Cookie: {spec.cookie_name}={cookie}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def cookie_for(self, held: str | None) -> str | None:
        if self.spec.cookie_mode == "chain":
            return held
        if self.spec.cookie_mode == "consume":
            try:
                return next(self.consumable)
            except StopIteration:
                self.exhausted = True
                raise
        return None

    async def exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cookie: str | None
    ) -> tuple[int, str | None]:
        writer.write(self.request(cookie))
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        new_cookie = None
        for name, value in _SET_COOKIE.findall(head):
            if name.decode() == self.spec.cookie_name and value:
                new_cookie = value.decode()
        return status, new_cookie

    def record(self, status: int, started: float) -> None:
        self.latencies.append(time.perf_counter() - started)
        if status not in self.spec.ok:
            self.errors[status] = self.errors.get(status, 0) + 1

    async def closed(self, index: int, deadline: float) -> None:
        spec = self.spec
        link = await Link.open(spec)
        held = spec.cookies[index] if spec.cookie_mode == "chain" else None
        try:
            while time.perf_counter() < deadline:
                try:
                    cookie = self.cookie_for(held)
                except StopIteration:
                    return
                started = time.perf_counter()
                status, new_cookie = await link.exchange(self, cookie)
                self.record(status, started)
                if spec.cookie_mode == "chain":
                    if new_cookie is None:
                        return  # the chain broke (an error is recorded): this client stops
                    held = new_cookie
        finally:
            link.writer.close()

    async def scheduled(self, index: int, queue: asyncio.Queue[float | None]) -> None:
        spec = self.spec
        link = await Link.open(spec)
        held = spec.cookies[index] if spec.cookie_mode == "chain" else None
        try:
            while (due := await queue.get()) is not None:
                try:
                    cookie = self.cookie_for(held)
                except StopIteration:
                    return
                status, new_cookie = await link.exchange(self, cookie)
                self.record(status, due)
                if spec.cookie_mode == "chain" and new_cookie is not None:
                    held = new_cookie
        finally:
            link.writer.close()


class Link:
    """One keep-alive connection; reopened when the server has closed it while idle (uvicorn
    closes a connection idle past its keep-alive timeout, as a slow fixed rate leaves them):
    the request it was sent never reached the server, so it is sent again on a new one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.perf_counter()

    @classmethod
    async def open(cls, spec: Spec) -> Link:
        return cls(*await asyncio.open_connection(spec.host, spec.port))

    async def exchange(self, run: Run, cookie: str | None) -> tuple[int, str | None]:
        idle = time.perf_counter() - self.used
        try:
            return await run.exchange(self.reader, self.writer, cookie)
        except (asyncio.IncompleteReadError, ConnectionError):
            if idle < 1.0:
                raise
            self.writer.close()
            self.reader, self.writer = await asyncio.open_connection(run.spec.host, run.spec.port)
            return await run.exchange(self.reader, self.writer, cookie)
        finally:
            self.used = time.perf_counter()


async def run(spec: Spec) -> dict[str, Any]:
    state = Run(spec)
    started = time.perf_counter()
    if spec.mode == "closed":
        deadline = started + spec.seconds
        await asyncio.gather(*(state.closed(i, deadline) for i in range(spec.connections)))
    else:
        queue: asyncio.Queue[float | None] = asyncio.Queue()
        clients = [asyncio.create_task(state.scheduled(i, queue)) for i in range(spec.connections)]
        interval = 1.0 / spec.rate
        due = started
        while due < started + spec.seconds:
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            queue.put_nowait(due)
            due += interval
        for _ in clients:
            queue.put_nowait(None)
        await asyncio.gather(*clients)
    elapsed = time.perf_counter() - started
    latencies = sorted(state.latencies)

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "errors": state.errors,
        "exhausted": state.exhausted,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(Spec(json.load(sys.stdin))))))
