"""The worker's Prometheus metrics and the small HTTP server exposing them.

`email_jobs_total` counts each job once, at its terminal outcome (`sent`, `failed` = permanent
rejection, `exhausted` = transient failures until the last try, `invalid` = a job that cannot be
rendered); retries are counted separately in `email_send_retries_total`. Queue depth and the
dead-letter length are read from Redis at scrape time, so they are never stale.

The server is a few lines of asyncio (no framework): `GET /metrics`, `GET /health` (the process
and its event loop answer), `GET /ready` (Redis answers). It runs on the worker's own loop, so a
blocked loop shows up as a failing health check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from shared.multiprocess_metrics import exposition

logger = logging.getLogger("blockbot.worker.metrics")

TEMPLATE_RESULTS = ("sent", "failed", "exhausted", "invalid")

EMAIL_JOBS = Counter(
    "email_jobs_total",
    "Email jobs finished, by template and terminal result (sent, failed, exhausted, invalid).",
    ["template", "result"],
)
EMAIL_SEND_DURATION = Histogram(
    "email_send_duration_seconds",
    "Time spent handing one message to the provider (or the outbox), by outcome.",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EMAIL_RETRIES = Counter(
    "email_send_retries_total",
    "Email sends that failed transiently and were scheduled for another try, by template.",
    ["template"],
)
EMAIL_QUEUE_DEPTH = Gauge(
    "email_queue_depth",
    "Email jobs in the queue (ready, deferred for retry, or running), read at scrape time.",
)
EMAIL_DEAD_LETTERS = Gauge(
    "email_dead_letter_entries",
    "Permanently failed emails kept in the dead-letter list, read at scrape time.",
)

Refresh = Callable[[], Awaitable[None]]
ReadyCheck = Callable[[], Awaitable[bool]]
MAX_REQUEST_LINE = 8192
REFRESH_TIMEOUT_SECONDS = 2.0


class MetricsServer:
    """Serve /metrics, /health and /ready on one port of the worker's event loop."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "0.0.0.0",
        refresh: Refresh | None = None,
        ready: ReadyCheck | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.host = host
        self.port = port
        self._refresh = refresh
        self._ready = ready
        self._registry = registry
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        logger.info("worker metrics listening", extra={"port": self.port})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _respond(self, path: str) -> tuple[int, str, bytes]:
        if path == "/health":
            return 200, "application/json", b'{"status":"ok"}'
        if path == "/ready":
            ok = False
            if self._ready is not None:
                with contextlib.suppress(Exception):
                    ok = await asyncio.wait_for(self._ready(), REFRESH_TIMEOUT_SECONDS)
            body = orjson.dumps(
                {
                    "status": "ready" if ok else "unavailable",
                    "checks": {"redis": "ok" if ok else "unavailable"},
                }
            )
            return (200 if ok else 503), "application/json", body
        if path == "/metrics":
            if self._refresh is not None:
                try:
                    await asyncio.wait_for(self._refresh(), REFRESH_TIMEOUT_SECONDS)
                except Exception as error:  # serve what we have; the gauge keeps its last value
                    logger.warning("metrics refresh failed", extra={"error": type(error).__name__})
            return 200, CONTENT_TYPE_LATEST, exposition(self._registry)
        return 404, "application/json", b'{"status":404,"title":"Not Found"}'

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            if not line or len(line) > MAX_REQUEST_LINE:
                return
            parts = line.decode("latin-1").split()
            # Drain the headers; bodies are not accepted.
            while True:
                header = await asyncio.wait_for(reader.readline(), 5.0)
                if header in (b"\r\n", b"\n", b""):
                    break
            if len(parts) < 2:
                status, ctype, body = 400, "text/plain", b"bad request"
            elif parts[0] not in ("GET", "HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed"
            else:
                status, ctype, body = await self._respond(parts[1].split("?", 1)[0])
            reason = {
                200: "OK",
                400: "Bad Request",
                404: "Not Found",
                405: "Method Not Allowed",
                503: "Service Unavailable",
            }.get(status, "OK")
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(head if parts and parts[0] == "HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
