"""The public REST contract in `docs/`, generated from the services' OpenAPI documents.

`python -m devstack.api_docs` rewrites `docs/api.md` and `docs/problems.md`; `--check` exits 1
when they differ from what the code would generate (a test runs it, so the pages cannot drift).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from shared.errors import PROBLEM_TYPE_BASE, AppError
from shared.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GATEWAY = "http://localhost:8080"
SERVICES = {"auth": ("Auth service", 8001), "api": ("API service", 8002)}
METHODS = ("get", "post", "put", "patch", "delete")


def document_settings() -> Settings:
    """Settings that build both apps without reaching any server (nothing is connected)."""
    from services.auth.keys import generate_seed

    return load_settings(
        _env_file=None,
        env="development",
        app_base_url=GATEWAY,
        cors_origins=[],
        database_url="postgresql://docs:docs@127.0.0.1:1/docs",
        redis_url="redis://127.0.0.1:1/0",
        jwks_url=f"{GATEWAY}/api/v1/auth/.well-known/jwks.json",
        jwt_public_keys=[],
        jwt_private_keys=[generate_seed()],
    )


def service_apps() -> dict[str, FastAPI]:
    """Both HTTP services, built as they start (no lifespan is run)."""
    from services.api.app import create_api_app
    from services.auth.app import create_auth_app

    settings = document_settings()
    return {"auth": create_auth_app(settings), "api": create_api_app(settings)}


def openapi_documents() -> dict[str, dict[str, Any]]:
    """The OpenAPI document each service serves at /openapi.json."""
    return {name: app.openapi() for name, app in service_apps().items()}


def problem_types() -> list[type[AppError]]:
    """Every problem kind a service can answer with (the services are imported first)."""
    service_apps()
    seen: dict[str, type[AppError]] = {}
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        seen.setdefault(cls.slug, cls)
        pending.extend(cls.__subclasses__())
    return sorted(seen.values(), key=lambda cls: (cls.status, cls.slug))


# --- rendering --------------------------------------------------------------------------------


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def anchor(service: str, schema_name: str) -> str:
    # Both documents may name a schema alike (OrgOut): each service's schemas have their own anchors.
    return f"{service}-{schema_name.lower()}"


def type_text(schema: Mapping[str, Any], service: str) -> str:
    """A schema in a few words: `string (uuid)`, `User`, `array of Session`, `string or null`."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[`{name}`](#{anchor(service, name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(type_text(part, service) for part in schema[key])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return "array of " + type_text(schema.get("items", {}), service)
    if kind == "object" and "additionalProperties" in schema and "properties" not in schema:
        return "object"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def constraints_text(schema: Mapping[str, Any]) -> str:
    notes = []
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
    ):
        if key in schema:
            notes.append(f"{label} {schema[key]}")
    for part in schema.get("anyOf", ()):
        notes.extend(n for n in constraints_text(part).split("; ") if n)
    if "default" in schema:
        notes.append(f"default `{json.dumps(schema['default'])}`")
    if "description" in schema:
        notes.append(str(schema["description"]))
    return "; ".join(notes)


def fields_table(schema: Mapping[str, Any], service: str) -> list[str]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    if not properties:
        return ["(no fields)"]
    required = set(schema.get("required", ()))
    lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    for name, prop in properties.items():
        notes = constraints_text(prop).replace("|", "\\|")
        needed = "yes" if name in required else "no"
        lines.append(f"| `{name}` | {type_text(prop, service)} | {needed} | {notes} |")
    return lines


def security_text(operation: Mapping[str, Any], document: Mapping[str, Any]) -> str:
    requirements = operation.get("security", [])
    if not requirements:
        return "none"
    schemes = document["components"]["securitySchemes"]
    parts = []
    for requirement in requirements:
        for name in requirement:
            scheme = schemes[name]
            if scheme["type"] == "http":
                parts.append(f"`Authorization: Bearer <access token>` (`{name}`)")
            else:
                parts.append(f"the `{scheme['name']}` cookie (`{name}`)")
    return ", ".join(parts)


def _body_schema(content: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    for media_type, item in content.items():
        return media_type, item.get("schema", {})
    return None


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def operation_lines(
    service: str, path: str, method: str, op: Mapping[str, Any], document: Mapping[str, Any]
) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    lines.append(f"Operation id `{op['operationId']}`; authentication: {security_text(op, document)}.")
    if op.get("description"):
        lines += ["", str(op["description"]).strip()]
    params = op.get("parameters", [])
    if params:
        lines += ["", "| parameter | in | type | required | notes |", "|---|---|---|---|---|"]
        for param in params:
            schema = param.get("schema", {})
            notes = constraints_text(schema).replace("|", "\\|")
            lines.append(
                f"| `{param['name']}` | {param['in']} | {type_text(schema, service)} | "
                f"{'yes' if param.get('required') else 'no'} | {notes} |"
            )
    body = op.get("requestBody")
    if body:
        media_type, schema = _body_schema(body["content"]) or ("", {})
        lines += ["", f"Request body (`{media_type}`): {type_text(schema, service)}."]
    lines += ["", "| status | body | meaning |", "|---|---|---|"]
    for status, response in op["responses"].items():
        content = _body_schema(response.get("content", {}))
        body_text = "none" if content is None else f"{type_text(content[1], service)} (`{content[0]}`)"
        if content is not None and not content[1]:
            body_text = f"`{content[0]}`"
        lines.append(f"| {status} | {body_text} | {response.get('description', '')} |")
    return [*lines, ""]


def schema_lines(service: str, name: str, schema: Mapping[str, Any]) -> list[str]:
    lines = [f'<a id="{anchor(service, name)}"></a>', "", f"#### {name}", ""]
    if schema.get("description"):
        lines += [str(schema["description"]).strip(), ""]
    return lines + fields_table(schema, service) + [""]


def _claim_defaults() -> tuple[str, str]:
    fields = Settings.model_fields
    return str(fields["jwt_issuer"].default), str(fields["jwt_audience"].default)


def render_api(documents: Mapping[str, Mapping[str, Any]]) -> str:
    """docs/api.md: every operation and schema of both documents, plus what they cannot say."""
    issuer, audience = _claim_defaults()
    lines = [
        "# BlockBot public REST API",
        "",
        "<!-- Generated by `python -m devstack.api_docs` (`make docs`) from the services' OpenAPI",
        "     documents. Do not edit: a test fails when this page differs from the code. -->",
        "",
        f"Every route is served through the gateway (Traefik): `{GATEWAY}` with `make run`",
        "(`DEVSTACK_HTTP_PORT` changes the port), `https://PUBLIC_HOST` in production. Each service",
        "also serves its own OpenAPI document and Swagger UI on its own port, never through the",
        "gateway: `http://127.0.0.1:8001/openapi.json` (auth) and `http://127.0.0.1:8002/openapi.json`",
        "(api), `/docs` beside them. Request and response bodies are JSON unless said otherwise.",
        "",
        "## Authentication",
        "",
        "- **Access token**: the `access_token` of a token response (login, refresh, email",
        "  verification, magic link, invitation acceptance), sent as `Authorization: Bearer <token>`.",
        "  A JWT signed with Ed25519 (`alg` `EdDSA`, `kid` in the header), valid `expires_in`",
        f"  seconds. Its claims: `iss` = `{issuer}`, `aud` = `{audience}` (settings `JWT_ISSUER`,",
        "  `JWT_AUDIENCE`; a JOSE client must pin both, and the algorithm), `sub` (user id), `org`,",
        "  `role`, `sid` (session id), `jti`, `iat`, `exp`, and how the user signed in: `amr`",
        "  (RFC 8176: `pwd`, `email` for an emailed link, `otp` for a TOTP or recovery code, `hwk` /",
        "  `swk` for a device-bound / synced passkey, `user` for its user verification, `mfa`), `acr`",
        "  (`aal1` one factor, `aal2` two) and `auth_time` (when the user last proved it; a refresh",
        "  keeps all three). Public keys: `GET /api/v1/auth/.well-known/jwks.json`.",
        "- **Second factor at sign-in**: for an account with TOTP or a passkey, a first factor",
        "  (`/login`, `/magic-link/verify`, `/invitations/accept`, and any later one) answers 401",
        "  `second-factor-challenge`, no token and no cookie, with `second_factor_required: true`,",
        "  `challenge` (opaque, single use), `methods` (`totp`, `webauthn`, `recovery_code`),",
        "  `expires_in` (seconds) and `webauthn` (PublicKeyCredentialRequestOptions, or `null`).",
        "  `POST /api/v1/auth/second-factor` with `challenge` and one of `totp_code`, `recovery_code`",
        "  or `webauthn` (the assertion) finishes it: a token response. A challenge takes",
        "  `SECOND_FACTOR_ATTEMPTS_PER_CHALLENGE` (5) attempts; an account takes 5 an hour and 20 a",
        "  day over all its challenges (429 beyond). A wrong password still answers as before.",
        "  Passkeys also sign in alone: `POST /passkeys/options`, then `POST /passkeys/authenticate`.",
        "- **Step-up**: creating API keys, changing roles, changing the password (`POST",
        "  /password/change`), removing or replacing second factors and the org's second-factor",
        "  policy need `auth_time` within `REAUTHENTICATION_MAX_AGE_SECONDS`",
        "  (600): else 403 `reauthentication-required` (`WWW-Authenticate: Bearer",
        '  error="insufficient_user_authentication", max_age=600`, RFC 9470); `POST',
        "  /api/v1/auth/reauthenticate` with the password, a TOTP code or a passkey gives a fresh",
        "  access token of the same session. In an org that requires a second factor, the api",
        "  answers 401 `second-factor-required` to tokens with `acr` `aal1` (API keys unaffected).",
        "- **Refresh cookie**: the same responses set `bb_refresh` (httpOnly, `SameSite=Strict`,",
        "  `Path=/api/v1/auth`, `Secure` outside development). `POST /api/v1/auth/refresh` rotates it",
        "  and returns a new access token; `POST /api/v1/auth/logout` revokes the session and clears it.",
        "- **Errors** are `application/problem+json` documents (schema `Problem`); every `type` is",
        "  listed in [problems.md](problems.md).",
        "- **Lists** are cursor-paginated: `?limit=&cursor=`, the next page's cursor in `next_cursor`",
        "  (`null` on the last page). Another organization's id is a 404, never a 403.",
        "- **Rate limits**: responses carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`;",
        "  a 429 also carries `Retry-After`.",
        "",
        "Emailed links (`/auth/verify-email#token=…`, `/auth/magic#token=…`,",
        "`/auth/reset-password#token=…`, `/auth/accept-invitation#token=…`) open the account pages at",
        "`APP_BASE_URL` (served by BlockBot unless `PAGES_ENABLED=false`; README, *Account pages*):",
        "they POST the token to the endpoints below, and so can you.",
        "",
    ]
    for name, document in documents.items():
        title, port = SERVICES[name]
        lines += [f"## {title}", "", f"OpenAPI: `http://127.0.0.1:{port}/openapi.json`.", ""]
        for path, method, op in operations(document):
            lines += operation_lines(name, path, method, op, document)
        lines += [f"### {title}: schemas", ""]
        schemas = document.get("components", {}).get("schemas", {})
        for schema_name in sorted(schemas):
            lines += schema_lines(name, schema_name, schemas[schema_name])
    return "\n".join(lines).rstrip() + "\n"


def render_problems(kinds: Iterable[type[AppError]]) -> str:
    """docs/problems.md: every problem `type`, its status and meaning, one anchor per type."""
    lines = [
        "# Problem types",
        "",
        "<!-- Generated by `python -m devstack.api_docs` (`make docs`) from the error classes.",
        "     Do not edit: a test fails when this page differs from the code. -->",
        "",
        "Every error is an RFC 9457 `application/problem+json` document: `type`, `title`, `status`,",
        "`detail`, `instance` (the request path), `request_id` (also the `X-Request-ID` header), and",
        "`errors` (one item per invalid field) on a 422. Branch on `type`, never on `detail`.",
        "",
        f"The `type` values are stable **identifiers**: `{PROBLEM_TYPE_BASE}<name>`, where `<name>`",
        "is an anchor of this page (`problems.md#<name>`). They are not served over HTTP.",
        "A status without a kind of its own below answers `type` `" + PROBLEM_TYPE_BASE + "http-<status>`.",
        "",
        "| type | status | title |",
        "|---|---|---|",
    ]
    kinds = list(kinds)
    for cls in kinds:
        lines.append(f"| [`{cls.slug}`](#{cls.slug}) | {cls.status} | {cls.title} |")
    lines.append("")
    for cls in kinds:
        meaning = (cls.__doc__ or "").strip() if cls is not AppError else ""
        lines += [
            f"## {cls.slug}",
            "",
            f'`{PROBLEM_TYPE_BASE}{cls.slug}`, status {cls.status}, title "{cls.title}".',
            "",
            meaning or cls.default_detail,
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def pages() -> dict[Path, str]:
    """Every generated page and its content."""
    return {
        DOCS / "api.md": render_api(openapi_documents()),
        DOCS / "problems.md": render_problems(problem_types()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.api_docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is out of date")
    parser.add_argument("--openapi-dir", type=Path, help="also write auth.json and api.json there")
    args = parser.parse_args(argv)
    if args.openapi_dir:
        args.openapi_dir.mkdir(parents=True, exist_ok=True)
        for name, document in openapi_documents().items():
            (args.openapi_dir / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    stale = []
    for path, text in pages().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        names = ", ".join(map(str, stale))
        print(f"out of date: {names}; run `make docs` (python -m devstack.api_docs)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
