"""The gateway's problem bodies (services/gateway): what Traefik shows for its own errors."""

from __future__ import annotations

import httpx
import pytest

from services.gateway.app import app

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


async def fetch(method: str, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        return await client.request(method, url)


async def test_unreachable_backend_is_a_503_problem_for_the_original_url() -> None:
    for status in ("502", "503", "504"):
        response = await fetch("GET", f"/_gateway/{status}?url=http://gw:8080/api/v1/me?x=1")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "2"
        body = response.json()
        assert body["status"] == 503 and body["instance"] == "/api/v1/me"
        assert body["type"].endswith("/service-unavailable")


async def test_body_limit_is_a_413_problem() -> None:
    body = (await fetch("POST", "/_gateway/413?url=/api/v1/auth/login")).json()
    assert body["status"] == 413 and "64 KiB" in body["detail"]


async def test_any_other_path_is_a_404_problem() -> None:
    for method, path in (("GET", "/metrics"), ("DELETE", "/nowhere"), ("GET", "/_gateway/500")):
        response = await fetch(method, path)
        assert response.status_code == 404, path
        assert response.json()["instance"] == path
        assert "retry-after" not in response.headers
