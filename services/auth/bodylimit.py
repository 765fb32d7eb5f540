"""A bound on request bodies: every auth request body is a few small JSON fields.

Pydantic's field limits apply only after the whole body has been read and parsed, so without
this a client could make the service buffer and parse megabytes per request. A declared
Content-Length over the bound is refused at once; a chunked body is counted as it streams and
refused as soon as it passes the bound. Both answers are a 413 problem.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PayloadTooLarge, error_response

MAX_BODY_BYTES = 16 * 1024


class BodySizeLimit:
    """Pure ASGI middleware; install it inside the request-context middleware (request ids)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
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
