"""Prometheus metrics shared by every HTTP service, and how requests are recorded in them.

Requests are labelled by route template (`/api/v1/users/{user_id}`), never by raw path, so
label cardinality is fixed by the code, not by the traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from shared.multiprocess_metrics import exposition

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template, method and status class.",
    ["route", "method", "status_class"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request received to response sent, by route template and method.",
    ["route", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# With several workers (shared/multiprocess_metrics.py) these are summed over the live ones.
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight", "HTTP requests being handled right now.", multiprocess_mode="livesum"
)
DB_POOL_IN_USE = Gauge(
    "db_pool_connections_in_use", "Database connections checked out of the pool.", multiprocess_mode="livesum"
)
DB_POOL_SIZE = Gauge(
    "db_pool_connections", "Database connections held by the pool.", multiprocess_mode="livesum"
)

UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template, or a fixed label for 404s."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    # Plain Starlette routes (/metrics, /docs, /openapi.json) leave only their endpoint in the
    # scope, not the route: find the route by it (rare requests, a short list).
    endpoint = scope.get("endpoint")
    if endpoint is not None:
        for candidate in getattr(getattr(scope.get("app"), "router", None), "routes", ()):
            if getattr(candidate, "endpoint", None) is endpoint:
                path = getattr(candidate, "path", None)
                if isinstance(path, str):
                    return path
    return UNMATCHED_ROUTE


class RequestMetrics:
    """Counts and times requests (the request middleware, shared/request_context.py, calls it).

    Label children are looked up once per (route, method, status class), not per request:
    `labels()` hashes and locks on each call.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status // 100)
        children = self._children.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels(route, method, f"{status // 100}xx"),
                HTTP_LATENCY.labels(route, method),
            )
            # Routes are templates (bounded) but methods come from clients: bound the cache too.
            if len(self._children) < 4096:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def metrics_endpoint(
    registry: CollectorRegistry = REGISTRY, before: Callable[[], Any] | None = None
) -> Callable[[Request], Response]:
    """A handler serving the registry in the Prometheus text format.

    With several uvicorn workers it serves the aggregate of all of them instead (one scrape
    target per service; shared/multiprocess_metrics.py).
    """

    def handler(_: Request) -> Response:
        if before is not None:
            before()
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    return handler
