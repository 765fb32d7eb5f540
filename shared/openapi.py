"""The public OpenAPI document of a service, shaped for client generators.

Readable operation ids (the route function's name in camelCase), one shared `Problem` schema,
security schemes on the operations that need them, and the gateway as the only server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts

from shared.errors import PROBLEM_CONTENT_TYPE, PROBLEM_SCHEMA, PROBLEM_SCHEMA_REF, NotFound

BEARER_AUTH = "bearerAuth"
REFRESH_COOKIE_AUTH = "refreshCookie"

# Schemes a dependency can declare with `requires_security`; cookie schemes come from FastAPI's
# own `APIKeyCookie` dependencies.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER_AUTH: {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An access token (a JWT from a token response); the api also accepts an API key (bb_...)."
        ),
    },
}

_MARK = "__openapi_security__"
_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])


def operation_id(route: APIRoute) -> str:
    """`get_me` -> `getMe`: what generators turn into method names."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def requires_security(scheme: str) -> Callable[[_Dependency], _Dependency]:
    """Mark a dependency as authenticating with `scheme`: every operation using it declares it."""
    if scheme not in SECURITY_SCHEMES:
        raise ValueError(f"unknown security scheme {scheme!r}")

    def mark(dependency: _Dependency) -> _Dependency:
        setattr(dependency, _MARK, scheme)
        return dependency

    return mark


def _declared_schemes(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        scheme = getattr(sub.call, _MARK, None)
        if isinstance(scheme, str):
            yield scheme
        yield from _declared_schemes(sub)


def _use_shared_problem(document: dict[str, Any]) -> None:
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                problem = response.get("content", {}).get(PROBLEM_CONTENT_TYPE)
                if problem is not None:
                    problem["schema"] = dict(PROBLEM_SCHEMA_REF)


def gateway_url(app_base_url: str) -> str:
    """The gateway's origin: the public contract is served on the web app's origin (one origin)."""
    return urlsplit(app_base_url)._replace(path="", query="", fragment="").geturl()


def install_openapi(app: FastAPI, *, server_url: str) -> None:
    """Replace `app.openapi` by the shaped document (built once, on first request)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=[{"url": server_url, "description": "the gateway (Traefik)"}],
        )
        components = document.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        _use_shared_problem(document)
        schemes = components.setdefault("securitySchemes", {})
        # Routers are included lazily (FastAPI keeps included routers nested): walk their routes.
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            needed = sorted(set(_declared_schemes(route.dependant)))
            if not needed:
                continue
            for name in needed:
                schemes[name] = SECURITY_SCHEMES[name]
            for method in route.methods or ():
                operation = document["paths"][route.path_format][method.lower()]
                operation.setdefault("security", []).extend({name: []} for name in needed)
        if not schemes:
            del components["securitySchemes"]
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]


# Swagger UI's files, from this package (shared/swagger_ui/, npm swagger-ui-dist): /docs works
# without internet, where FastAPI's default page would load them from a CDN.
SWAGGER_UI_DIR = Path(__file__).resolve().parent / "swagger_ui"
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
DOCS_ASSET_PREFIX = "/docs/assets/"


@cache
def _swagger_ui_file(name: str) -> bytes:
    # Read on first use: most processes never serve /docs.
    return (SWAGGER_UI_DIR / name).read_bytes()


def install_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI for `/openapi.json`, every file of it served by the service itself.
    (Create the app with `docs_url=None, redoc_url=None`.)"""

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=DOCS_ASSET_PREFIX + "swagger-ui-bundle.js",
            swagger_css_url=DOCS_ASSET_PREFIX + "swagger-ui.css",
            swagger_favicon_url=DOCS_ASSET_PREFIX + "favicon-32x32.png",
        )

    async def asset(name: str) -> Response:
        content_type = SWAGGER_UI_FILES.get(name)
        if content_type is None:
            raise NotFound()
        headers = {"Cache-Control": "public, max-age=86400"}
        return Response(_swagger_ui_file(name), media_type=content_type, headers=headers)

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(DOCS_ASSET_PREFIX + "{name}", asset, methods=["GET"], include_in_schema=False)
