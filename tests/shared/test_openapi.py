"""The OpenAPI documents as client generators read them, and the docs/ pages made from them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from devstack import api_docs
from shared.errors import PROBLEM_SCHEMA

# Operations anyone may call; every other one declares how it authenticates.
PUBLIC = {
    "register",
    "verifyEmail",
    "verifyRequest",
    "login",
    "magicLink",
    "magicLinkVerify",
    "passwordForgot",
    "passwordReset",
    "acceptInvitation",
    "jwks",
    "openidConfiguration",
    "secondFactor",
    "passkeyOptions",
    "passkeyAuthenticate",
    "describeChallenge",
    # external providers: the browser's own navigation (the attempt cookie binds it)
    "listProviders",
    "startProviderSignIn",
    "startProviderInvitation",
    "providerCallback",
}
COOKIE = {"refresh", "logout"}


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return api_docs.openapi_documents()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return list(api_docs.operations(document))


def test_both_documents_are_valid_openapi(documents):
    assert set(documents) == {"auth", "api"}
    for document in documents.values():
        validate(document)


def test_operation_ids_are_readable_unique_camel_case(documents):
    for name, document in documents.items():
        ids = [op["operationId"] for _, _, op in _operations(document)]
        assert len(ids) == len(set(ids)), name
        for operation_id in ids:
            assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", operation_id), operation_id
    api_ids = {op["operationId"] for _, _, op in _operations(documents["api"])}
    assert {"getMe", "listUsers", "getUser", "patchOrg", "listAuditLog"} <= api_ids


def test_one_shared_problem_schema_referenced_by_every_error_response(documents):
    for name, document in documents.items():
        assert document["components"]["schemas"]["Problem"] == PROBLEM_SCHEMA
        for path, method, op in _operations(document):
            errors = {status: r for status, r in op["responses"].items() if status[0] in "45"}
            assert {"4XX", "5XX"} <= set(errors), (name, path, method)
            for response in errors.values():
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (name, path, method)
        # No inlined copy anywhere outside the component (what generators duplicated per operation).
        outside = json.dumps({k: v for k, v in document.items() if k != "components"})
        assert "one item per invalid field" not in outside, name


def test_security_is_declared_on_every_authenticated_operation(documents):
    auth, api = documents["auth"], documents["api"]
    bearer = api["components"]["securitySchemes"]["bearerAuth"]
    assert bearer["type"] == "http" and bearer["scheme"] == "bearer"
    assert auth["components"]["securitySchemes"]["bearerAuth"] == bearer
    cookie = auth["components"]["securitySchemes"]["refreshCookie"]
    assert (cookie["type"], cookie["in"], cookie["name"]) == ("apiKey", "cookie", "bb_refresh")
    for path, method, op in _operations(api):
        assert op.get("security") == [{"bearerAuth": []}], (path, method)
    for path, method, op in _operations(auth):
        expected: list[dict[str, list[str]]] | None = (
            None
            if op["operationId"] in PUBLIC
            else [{"refreshCookie": []}]
            if op["operationId"] in COOKIE
            else [{"bearerAuth": []}]
        )
        assert op.get("security") == expected, (path, method)


def test_servers_tags_and_no_unrouted_paths(documents):
    for name, document in documents.items():
        assert document["servers"] == [
            {"url": "http://localhost:8080", "description": "the gateway (Traefik)"}
        ]
        for path in document["paths"]:
            assert path.startswith("/api/v1/"), (name, path)
        for _, _, op in _operations(document):
            assert op.get("tags") and "health" not in op["tags"]


def test_the_user_object_is_the_same_in_token_responses_and_me(documents):
    auth_schemas = documents["auth"]["components"]["schemas"]
    api_schemas = documents["api"]["components"]["schemas"]
    assert auth_schemas["User"] == api_schemas["User"]
    assert {"org_id", "created_at"} <= set(auth_schemas["User"]["required"])
    assert auth_schemas["TokenResponse"]["properties"]["user"] == {"$ref": "#/components/schemas/User"}
    assert api_schemas["MeOut"]["properties"]["user"] == {"$ref": "#/components/schemas/User"}


def test_docs_pages_match_the_code():
    """docs/api.md and docs/problems.md are exactly what `make docs` would write."""
    for path, text in api_docs.pages().items():
        assert path.exists(), f"{path} is missing: run `make docs`"
        assert path.read_text() == text, f"{path.name} is out of date: run `make docs`"


def test_api_page_lists_every_operation_and_problem_page_every_type(documents):
    page = (api_docs.DOCS / "api.md").read_text()
    for document in documents.values():
        for path, method, op in _operations(document):
            assert f"### `{method.upper()} {path}`" in page
            assert f"Operation id `{op['operationId']}`" in page
    problems = (api_docs.DOCS / "problems.md").read_text()
    slugs = {cls.slug for cls in api_docs.problem_types()}
    assert {"invalid-token", "validation-error", "rate-limited", "service-unavailable"} <= slugs
    for slug in slugs:
        assert f"\n## {slug}\n" in problems, slug


def test_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(api_docs, "DOCS", tmp_path)
    monkeypatch.setattr(api_docs, "ROOT", tmp_path)
    assert api_docs.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert api_docs.main([]) == 0
    assert api_docs.main(["--check"]) == 0
