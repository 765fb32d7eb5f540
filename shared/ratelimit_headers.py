"""The one way RateLimit-* headers reach a response, in every HTTP service.

The code that decides (`remember`) leaves the decision in the ASGI scope; the request
middleware (shared/request_context.py) adds the headers to whatever response is sent, success
or problem, without overriding headers the response already has (a 429's own).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope

from shared.ratelimit import Decision, ratelimit_headers

DECISION_SCOPE_KEY = "blockbot.ratelimit"


def remember(request: Request, decision: Decision) -> None:
    """Have this request's response carry `decision`'s RateLimit-* headers."""
    request.scope[DECISION_SCOPE_KEY] = decision


def with_ratelimit_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` (raw ASGI response headers) plus the RateLimit-* headers of the decision made
    for this request, if any, except those the response already has."""
    decision: Decision | None = scope.get(DECISION_SCOPE_KEY)
    if decision is None:
        return headers
    present = {name.lower() for name, _ in headers}
    for name, value in ratelimit_headers(decision).items():
        raw = name.lower().encode()
        if raw not in present:
            headers.append((raw, value.encode()))
    return headers
