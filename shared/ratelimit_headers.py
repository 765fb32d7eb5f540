"""The one way RateLimit-* headers reach a response, in every HTTP service.

The code that decides (`remember`) leaves the decision in the ASGI scope; the middleware adds
the headers to whatever response is sent, success or problem, without overriding headers the
response already has (a 429's own).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.ratelimit import Decision, ratelimit_headers

DECISION_SCOPE_KEY = "blockbot.ratelimit"


def remember(request: Request, decision: Decision) -> None:
    """Have this request's response carry `decision`'s RateLimit-* headers."""
    request.scope[DECISION_SCOPE_KEY] = decision


class RateLimitHeadersMiddleware:
    """Adds RateLimit-* headers to every response for which a decision was made."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision: Decision | None = scope.get(DECISION_SCOPE_KEY)
                if decision is not None:
                    headers: list[Any] = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    for name, value in ratelimit_headers(decision).items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)
