"""The app factory every HTTP service uses: errors, request ids, metrics, health and lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from shared import health, multiprocess_metrics
from shared.errors import PROBLEM_RESPONSES, install_problem_handlers
from shared.jsonresponse import ORJSONResponse
from shared.logging import configure_logging
from shared.metrics import DB_POOL_IN_USE, DB_POOL_SIZE, metrics_endpoint
from shared.openapi import gateway_url, install_docs, install_openapi, operation_id
from shared.overload import install_overload_guards, loop_lag_watched
from shared.request_context import RequestEdgeMiddleware
from shared.resources import Resources
from shared.settings import Settings
from shared.tracing import instrument_app, setup_tracing, tracing_active

# A service's own start-up and shutdown, run inside the shared lifespan with its resources.
ServiceLifespan = Callable[[FastAPI, Resources], AbstractAsyncContextManager[None]]

# Allocations (net of frees) between two young-generation collections while serving; the
# default, 700, means a collection every request or two on FastAPI's allocation-heavy path.
GC_YOUNG_THRESHOLD = 10_000


@contextmanager
def settled_heap() -> Iterator[None]:
    """Serve with the start-up heap out of the garbage collector's way, then put it back.

    Otherwise the cyclic collector spends a good part of each request re-scanning the objects
    every module and the app built at start-up, which live as long as the process. Frozen
    (`gc.freeze`), they are never scanned again; the rarer young collections still collect the
    request path's cycles (a few thousand objects each). Unfrozen at shutdown, so a process that
    builds several apps (the tests) still collects.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def create_app(
    *,
    title: str,
    settings: Settings,
    routers: Sequence[APIRouter],
    service_lifespan: ServiceLifespan | None = None,
    resources: Resources | None = None,
) -> FastAPI:
    """Build a service app. Pass `resources` to share clients (tests); otherwise they are made here."""
    # Every HTTP service needs its database and Redis: refuse to start without, naming both.
    settings.require("database_url", "redis_url")
    configure_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = resources is None
        res = resources or Resources.create(settings)
        app.state.resources = res
        try:
            if service_lifespan is None:
                with settled_heap():
                    async with loop_lag_watched():
                        yield
            else:
                async with service_lifespan(app, res):
                    with settled_heap():
                        async with loop_lag_watched():
                            yield
        finally:
            if owned:
                await res.close()
            multiprocess_metrics.process_exited()

    app = FastAPI(
        # FastAPI's own OpenTelemetry support would otherwise ask the global providers whether
        # it has anything to do on every request; tracing here is `instrument_app`'s.
        telemetry=None if tracing_active() else {"tracing": False, "metrics": False, "logs": False},
        title=title,
        version="1.0.0",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
        responses=PROBLEM_RESPONSES,
        generate_unique_id_function=operation_id,
        # /docs is install_docs' (Swagger UI served from this package, not a CDN); no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_overload_guards(app, settings.max_requests_in_flight)
    for router in routers:
        app.include_router(router)
    # Probes and metrics are not routed by the gateway: a generated client could not call them.
    app.include_router(health.router, include_in_schema=False)
    install_openapi(app, server_url=gateway_url(str(settings.app_base_url)))
    install_docs(app)

    def refresh_pool_gauges() -> None:
        res: Resources | None = getattr(app.state, "resources", None)
        if res is None:
            return
        pool = res.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        if callable(checked_out) and callable(size):
            DB_POOL_IN_USE.set(checked_out())
            DB_POOL_SIZE.set(size())

    app.add_route("/metrics", metrics_endpoint(before=refresh_pool_gauges), include_in_schema=False)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            # Credentials (the refresh cookie) are never allowed together with a wildcard.
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
                "X-Request-ID",
            ],
        )
    # Outermost: request id, RateLimit-* headers, metrics and access log, in one layer.
    app.add_middleware(RequestEdgeMiddleware)
    if tracing_active():  # off: not even a pass-through layer on the request path
        instrument_app(app)
    return app
