"""The one middleware every request passes: request id, RateLimit-* headers, metrics, access log.

One pure ASGI layer with one `send` wrapper (each extra layer costs a coroutine frame per call
and a wrapper per message, on every request):

* a request id, kept from `X-Request-ID` when it is sane, else made here; echoed in the
  response and carried by every log line and problem of the request (`request_id_var`);
* the RateLimit-* headers of the rate-limit decision made for the request (shared/
  ratelimit_headers.py), on whatever response is sent, success or problem;
* the request metrics, by route template (never the raw path): count, latency, in flight;
* one JSON access-log line with the route template, never the query;
* a last-resort 500 problem for an exception nothing else handled, inside the request context
  so that it carries the request id (Starlette's own handler runs outside every middleware).
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import request_id_var
from shared.errors import AppError, error_response
from shared.metrics import HTTP_IN_FLIGHT, RequestMetrics, route_template
from shared.ratelimit_headers import with_ratelimit_headers

REQUEST_ID_HEADER = b"x-request-id"
# An incoming id is kept only if it is harmless to log and echo.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._\-]{8,128}$")
access_logger = logging.getLogger("blockbot.access")
logger = logging.getLogger("blockbot.errors")


def new_request_id() -> str:
    """32 random hex digits (what `uuid4().hex` gave, without building a UUID per request)."""
    return os.urandom(16).hex()


class RequestEdgeMiddleware:
    """Request id, RateLimit-* headers, metrics and the access log, in one layer (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = RequestMetrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                incoming = value
                break
        request_id = incoming.decode() if incoming and _VALID_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_once_wrapped(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = with_ratelimit_headers(scope, headers)
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_once_wrapped)
        except Exception as exc:
            logger.error("unhandled error", exc_info=exc, extra={"path": scope.get("path")})
            if not started:
                response = error_response(AppError(), scope.get("path", ""))
                await response(scope, receive, send_once_wrapped)
        finally:
            HTTP_IN_FLIGHT.dec()
            duration = time.perf_counter() - start
            route = route_template(scope)
            method = scope["method"]
            self.metrics.observe(route, method, status, duration)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                    },
                )
            request_id_var.reset(token)
