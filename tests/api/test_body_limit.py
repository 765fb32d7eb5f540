"""Request bodies over API_MAX_BODY_BYTES are a 413 problem before they are read or authenticated.

Security review finding 2: an unauthenticated, oversized `PATCH /org` must not be read whole
(memory grows with it) before the missing bearer token is noticed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from shared.settings import Settings
from tests.api.helpers import running

CHUNK = 8 * 1024


async def test_declared_oversized_body_is_refused_before_authentication(
    api_settings: Callable[..., Settings],
) -> None:
    async with running(api_settings()) as api:
        assert api.settings.api_max_body_bytes == 64 * 1024
        body = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
        response = await api.client.patch(
            "/api/v1/org", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == 413 and problem["type"].endswith("/payload-too-large")
        assert problem["request_id"] == response.headers["x-request-id"]
        # Under the bound, the same anonymous request gets as far as authentication.
        small = await api.client.patch("/api/v1/org", json={"name": "x" * 100})
        assert small.status_code == 401


async def test_streamed_body_is_cut_off_at_the_limit(api_settings: Callable[..., Settings]) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        for _ in range(1024):  # 8 MiB offered
            sent += CHUNK
            yield b"x" * CHUNK

    async with running(api_settings(api_max_body_bytes=16 * 1024)) as api:
        response = await api.client.patch(
            "/api/v1/org", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
    # The app stopped pulling the body as soon as it passed the bound.
    assert sent <= 16 * 1024 + CHUNK


async def test_the_bound_is_a_setting(api_settings: Callable[..., Settings]) -> None:
    async with running(api_settings(api_max_body_bytes=2048)) as api:
        over = await api.client.patch("/api/v1/org", json={"name": "x" * 3000})
        assert over.status_code == 413
        under = await api.client.patch("/api/v1/org", json={"name": "x" * 1000})
        assert under.status_code == 401
