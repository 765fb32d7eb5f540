"""The error hierarchy and its single mapping to RFC 9457 `application/problem+json`.

Services raise `AppError` subclasses; `install_problem_handlers` turns those, framework errors
(404, 405, 422) and anything unexpected (500, logged, never echoed) into problem documents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from shared.context import request_id_var
from shared.db_outage import DB_UNAVAILABLE, RETRY_AFTER_SECONDS, unavailable_reason
from shared.jsonresponse import json_bytes

PROBLEM_TYPE_BASE = "https://blockbot.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

logger = logging.getLogger("blockbot.errors")


# The problem kinds: status -> (type slug, title, default detail). The one table of them;
# each `AppError` subclass below names its status and takes the rest from here.
_PROBLEMS: dict[int, tuple[str, str, str]] = {
    400: ("bad-request", "Bad Request", "The request is malformed."),
    401: ("unauthorized", "Unauthorized", "Authentication is required or has failed."),
    403: ("forbidden", "Forbidden", "You are not allowed to do this."),
    404: ("not-found", "Not Found", "The resource does not exist."),
    405: ("method-not-allowed", "Method Not Allowed", "This method is not allowed on this resource."),
    409: ("conflict", "Conflict", "The request conflicts with the current state of the resource."),
    410: ("gone", "Gone", "The resource is no longer available."),
    413: ("payload-too-large", "Payload Too Large", "The request body is too large."),
    422: ("validation-error", "Validation Error", "The request body or parameters are invalid."),
    429: ("rate-limited", "Too Many Requests", "Too many requests; retry after the time in Retry-After."),
    503: ("service-unavailable", "Service Unavailable", "A dependency is unavailable; retry later."),
}

# The class of each status, for framework errors (404, 405, ...) raised outside our code.
_BY_STATUS: dict[int, type[AppError]] = {}


class AppError(Exception):
    """Base of every error a service raises on purpose; subclasses fix status, type and title.

    A direct kind names its status (`class NotFound(AppError, status=404)`) and takes slug,
    title and default detail from `_PROBLEMS`; a domain error subclasses a kind and may set
    its own `default_detail`.
    """

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal Server Error"
    default_detail: ClassVar[str] = "An unexpected error occurred."

    def __init_subclass__(cls, *, status: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
            cls.slug, cls.title, cls.default_detail = _PROBLEMS[status]
            _BY_STATUS[status] = cls

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)


class BadRequest(AppError, status=400): ...


class Unauthorized(AppError, status=401):
    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError, status=403): ...


class NotFound(AppError, status=404): ...


class MethodNotAllowed(AppError, status=405): ...


class Conflict(AppError, status=409): ...


class Gone(AppError, status=410): ...


class PayloadTooLarge(AppError, status=413): ...


class ValidationFailed(AppError, status=422): ...


class RateLimited(AppError, status=429): ...


class ServiceUnavailable(AppError, status=503): ...


# --- second factors and step-up (both services) ---------------------------------------------
# In the manner of RFC 9470 (OAuth 2.0 Step-up Authentication Challenge): the token is valid,
# the authentication behind it is not enough for this request, and `WWW-Authenticate` says why.


class ReauthenticationRequired(Forbidden):
    """A sensitive action (linking a provider included) by a session whose last authentication
    is older than REAUTHENTICATION_MAX_AGE_SECONDS. Re-authenticate (POST
    /api/v1/auth/reauthenticate), or sign in again, and retry."""

    slug, title = "reauthentication-required", "Reauthentication Required"
    default_detail = (
        "Confirm it is you (re-authenticate or sign in again), then retry: your last sign-in is too old."
    )

    def __init__(self, max_age: int | None = None, detail: str | None = None) -> None:
        challenge = 'Bearer error="insufficient_user_authentication"'
        if max_age is not None:
            challenge += f", max_age={max_age}"
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class SecondFactorRequired(Unauthorized):
    """The organization requires a second factor and this token was issued without one."""

    slug, title = "second-factor-required", "Second Factor Required"
    default_detail = "Your organization requires a second factor: sign in with one (or enrol one first)."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail,
            headers={
                "WWW-Authenticate": 'Bearer error="insufficient_user_authentication", acr_values="aal2"'
            },
        )


# The shape of every problem document: `components.schemas.Problem` of every OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document; `type` identifies the kind (docs/problems.md).",
    "required": ["type", "title", "status", "detail", "instance"],
    "additionalProperties": True,
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "description": "422 only: one item per invalid field (the input is never echoed).",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


PROBLEM_SCHEMA_REF: dict[str, str] = {"$ref": "#/components/schemas/Problem"}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_CONTENT_TYPE: {"schema": dict(PROBLEM_SCHEMA_REF)}}


# Declared on every app: whatever 4xx or 5xx a route returns, its body is a problem document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "Client error (RFC 9457 problem)", "content": _problem_content()},
    "5XX": {"description": "Server error (RFC 9457 problem)", "content": _problem_content()},
}


def problem_response(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """Build one problem+json response; the only place the document shape is defined."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id_var.get(),
    }
    if extra:
        body.update(extra)
    return Response(
        content=json_bytes(body),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def error_response(error: AppError, instance: str) -> Response:
    """Render an AppError as problem+json."""
    return problem_response(
        status=error.status,
        slug=error.slug,
        title=error.title,
        detail=error.detail,
        instance=instance,
        headers=error.headers,
        extra=error.extra,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is left out on purpose: it may be a password or a token.
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request, headers: Mapping[str, str] | None) -> str:
    """Every method the path supports (RFC 9110 Allow).

    Starlette answers 405 with the methods of the first route matching the path only, while
    FastAPI registers one route per method: GET and PATCH on /org would say `Allow: GET`. The
    router is asked, method by method, whether some route fully matches the path."""
    base = {
        "type": "http",
        "path": request.scope["path"],
        "root_path": request.scope.get("root_path", ""),
        "headers": [],
        "query_string": b"",
    }
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**base, "method": method})[0] is Match.FULL for route in request.app.router.routes
        )
    ]
    if not allowed:
        return (headers or {}).get("Allow", "")
    return ", ".join(allowed)


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error the app can produce to problem+json."""

    async def on_app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return error_response(exc, request.url.path)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        cls = _BY_STATUS.get(exc.status_code)
        if cls is None:
            return problem_response(
                status=exc.status_code,
                slug=f"http-{exc.status_code}",
                title="HTTP error",
                detail="The request could not be processed.",
                instance=request.url.path,
                headers=exc.headers,
            )
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request, headers)}
        # Framework messages ("Not Found") are replaced by our own stable detail.
        return error_response(cls(headers=headers), request.url.path)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        error = ValidationFailed(extra={"errors": _validation_errors(exc)})
        return error_response(error, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        logger.error(
            "unhandled error",
            exc_info=exc,
            extra={"path": request.url.path, "method": request.method},
        )
        return error_response(AppError(), request.url.path)

    async def on_dependency_error(request: Request, exc: Exception) -> Response:
        # Registered for database and OS errors: an unavailable dependency is a 503 logged in
        # one line (an outage must not write a traceback per request); anything else is a 500.
        reason = unavailable_reason(exc)
        if reason is None:
            return await on_unexpected(request, exc)
        DB_UNAVAILABLE.labels(reason).inc()
        logger.warning(
            "dependency unavailable",
            extra={
                "reason": reason,
                "error": repr(exc)[:300],
                "path": request.url.path,
                "method": request.method,
            },
        )
        error = ServiceUnavailable(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return error_response(error, request.url.path)

    app.add_exception_handler(AppError, on_app_error)
    for dependency_error in (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(dependency_error, on_dependency_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


# --- external identity providers (services/auth/providers) -------------------------------------
class LastSignInMethod(Conflict):
    """Unlinking the identity would leave the account with no way to sign in."""

    slug, title = "last-sign-in-method", "Last Sign-in Method"
    default_detail = (
        "This is the account's last way to sign in: set a password or link another provider first."
    )


class LinkedIdentityNotFound(NotFound):
    """An identity id that is not one of the caller's linked identities."""

    default_detail = "No such linked identity."


class UnknownProvider(NotFound):
    """A provider id that AUTH_PROVIDERS does not configure."""

    slug, title = "unknown-provider", "Unknown Provider"
    default_detail = "No such sign-in provider is configured."


# --- changing a password (auth accounts) -------------------------------------------------------


class WrongCurrentPassword(ValidationFailed):
    """A password change whose current password is wrong: a 422 naming that field, so a form
    shows it beside the field (never a 401, which clients read as an expired token)."""

    def __init__(self) -> None:
        message = "This is not your current password."
        super().__init__(
            message,
            extra={
                "errors": [{"loc": ["body", "current_password"], "msg": message, "type": "wrong_password"}]
            },
        )
