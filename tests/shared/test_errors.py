"""Every error a service can produce is an RFC 9457 problem document."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, Field

from shared.app import create_app
from shared.errors import Conflict
from shared.settings import Settings

router = APIRouter()


class Payload(BaseModel):
    email: str = Field(min_length=3)
    password: str = Field(min_length=10)


@router.post("/things")
async def create_thing(payload: Payload) -> dict[str, str]:
    return {"email": payload.email}


@router.get("/things/{thing_id}")
async def read_thing(thing_id: int) -> dict[str, int]:
    return {"id": thing_id}


@router.patch("/things/{thing_id}")
async def update_thing(thing_id: int) -> dict[str, int]:
    return {"id": thing_id}


@router.get("/conflict")
async def conflict() -> None:
    raise Conflict("Already exists.", extra={"field": "email"})


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("internal detail: password=hunter2 at db.example:5432")


@pytest.fixture
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(title="t", settings=make_settings("api"), routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as c,
    ):
        yield c


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://blockbot.dev/problems/{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_a_404_problem(client):
    assert_problem(await client.get("/nope"), 404, "not-found")


async def test_wrong_method_is_a_405_problem(client):
    response = await client.delete("/things")
    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


async def test_405_allow_lists_every_method_of_the_path(client):
    # One route per method: Starlette would name only the first one's (`Allow: GET`).
    response = await client.delete("/things/1")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, PATCH"


async def test_validation_error_lists_fields_without_echoing_input(client):
    response = await client.post("/things", json={"email": "a", "password": "short-pw"})
    body = assert_problem(response, 422, "validation-error")
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {tuple(e["loc"]) for e in errors} == {("body", "email"), ("body", "password")}
    assert "short-pw" not in response.text


async def test_malformed_json_is_a_422_problem(client):
    response = await client.post(
        "/things", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation-error")


async def test_app_error_keeps_its_status_detail_and_extras(client):
    body = assert_problem(await client.get("/conflict"), 409, "conflict")
    assert body["detail"] == "Already exists."
    assert body["field"] == "email"


async def test_unhandled_error_is_a_generic_500_without_internals(client, caplog):
    response = await client.get("/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"] == "An unexpected error occurred."


async def test_incoming_request_id_is_kept_only_if_sane(client):
    kept = await client.get("/nope", headers={"x-request-id": "abc-123-def-456"})
    assert kept.headers["x-request-id"] == "abc-123-def-456"
    replaced = await client.get("/nope", headers={"x-request-id": "bad id\u0000<script>"})
    assert replaced.headers["x-request-id"] != "bad id"
    assert len(replaced.headers["x-request-id"]) == 32


async def test_health_and_metrics_are_served(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'http_requests_total{method="GET",route="/health",status_class="2xx"}' in metrics.text
    # 404s are labelled with a fixed value, never the raw path.
    await client.get("/users/123e4567-e89b-12d3-a456-426614174000")
    text = (await client.get("/metrics")).text
    assert "123e4567" not in text
    assert 'route="<unmatched>"' in text


def test_openapi_documents_declare_problem_json_for_every_error(make_settings):
    from services.api.app import create_api_app
    from services.auth.app import create_auth_app

    apps = [
        create_auth_app(make_settings("auth")),
        create_api_app(make_settings("api", jwks_url="http://127.0.0.1:1/jwks.json")),
    ]
    for app in apps:
        document = app.openapi()
        operations = [
            (path, method, op) for path, item in document["paths"].items() for method, op in item.items()
        ]
        assert operations
        for path, method, op in operations:
            for status_range in ("4XX", "5XX"):
                content = op["responses"][status_range]["content"]
                assert list(content) == ["application/problem+json"], (path, method)
            # FastAPI's own non-problem 422 schema must not be advertised.
            assert "422" not in op["responses"], (path, method)


async def test_a_real_validation_problem_matches_the_declared_schema(client):
    import jsonschema

    from shared.errors import PROBLEM_SCHEMA

    response = await client.post("/things", json={"email": "a"})
    jsonschema.validate(response.json(), PROBLEM_SCHEMA)
    jsonschema.validate((await client.get("/nope")).json(), PROBLEM_SCHEMA)
