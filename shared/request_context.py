"""Request id and access log: one JSON line per request, with the route template, never the query."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import request_id_var
from shared.errors import AppError, error_response
from shared.metrics import route_template

REQUEST_ID_HEADER = b"x-request-id"
# An incoming id is kept only if it is harmless to log and echo.
_VALID_ID = re.compile(rb"^[A-Za-z0-9._\-]{8,128}$")
access_logger = logging.getLogger("blockbot.access")
logger = logging.getLogger("blockbot.errors")


class RequestContextMiddleware:
    """Assign a request id (or keep a sane incoming one), echo it, and log the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", ())).get(REQUEST_ID_HEADER)
        request_id = incoming.decode() if incoming and _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Handled here, inside the request context, so the 500 problem and the log line
            # carry the request id (Starlette's own handler runs outside every middleware).
            logger.error("unhandled error", exc_info=exc, extra={"path": scope.get("path")})
            if not started:
                response = error_response(AppError(), scope.get("path", ""))
                await response(scope, receive, send_wrapper)
        finally:
            access_logger.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "route": route_template(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                },
            )
            request_id_var.reset(token)
