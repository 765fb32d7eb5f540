"""A bound on request bodies, installed by every HTTP service (auth 16 KiB, api 64 KiB by default).

FastAPI reads and parses the whole body before any dependency runs (authentication included) and
pydantic's field limits apply only after that, so without this bound an anonymous client could
make a service buffer and parse megabytes per request. A declared
Content-Length over the bound is refused at once; a chunked body is counted as it streams and
refused as soon as it passes the bound. Both answers are a 413 problem.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PayloadTooLarge, error_response


class BodySizeLimit:
    """Pure ASGI middleware; install it with `install_body_limit` (inside the request context)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False  # the server rejects a malformed length itself
            if too_large:
                response = error_response(PayloadTooLarge(), scope.get("path", ""))
                await response(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI re-raises HTTPException from body parsing; the problem handlers
                    # render it as the 413 problem.
                    raise HTTPException(status_code=413)
            return message

        await self.app(scope, counted, send)


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Bound the app's request bodies; innermost, so its 413 carries the request id and is counted."""
    app.user_middleware.append(Middleware(BodySizeLimit, max_bytes=max_bytes))
