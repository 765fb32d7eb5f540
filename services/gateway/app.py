"""ASGI app Traefik asks for the body of its own errors: `uvicorn services.gateway.app:app`.

Traefik's errors middleware fetches `/_gateway/<status>?url=<original URL>` when it produced a
413 (body limit) or could not reach a backend (502/504, rewritten to 503), and its lowest-priority
router sends every unrouted path here for a 404. Every answer is the services' problem+json.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.errors import AppError, NotFound, PayloadTooLarge, ServiceUnavailable, problem_response

ERROR_PREFIX = "/_gateway/"
# A backend the gateway cannot reach is, for the client, temporarily unavailable.
UNREACHABLE = "The service is not reachable right now (starting or restarting); retry later."
GATEWAY_ERRORS: dict[str, tuple[type[AppError], str]] = {
    "413": (PayloadTooLarge, "The request body is larger than the gateway accepts (64 KiB)."),
    "502": (ServiceUnavailable, UNREACHABLE),
    "503": (ServiceUnavailable, UNREACHABLE),
    "504": (ServiceUnavailable, "The service did not answer in time; retry later."),
}
RETRY_AFTER_SECONDS = "2"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def gateway_problem(request: Request) -> Response:
    """The problem for a gateway error page, or 404 for any path no router matched."""
    path = request.url.path
    error: type[AppError] = NotFound
    detail = "No resource at this URL."
    if path.startswith(ERROR_PREFIX):
        error, detail = GATEWAY_ERRORS.get(path.removeprefix(ERROR_PREFIX), (error, detail))
        # Traefik passes the original URL; the instance is its path, as in the services' problems.
        path = urlsplit(request.query_params.get("url", path)).path or "/"
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if error is ServiceUnavailable else {}
    headers["Cache-Control"] = "no-store"
    return problem_response(
        status=error.status, slug=error.slug, title=error.title, detail=detail, instance=path, headers=headers
    )


app = Starlette(routes=[Route("/{path:path}", gateway_problem, methods=METHODS)])
