"""The accounts routes' per-network windows: a route dependency, checked before the body's
fields are validated, so an invalid request counts too."""

from __future__ import annotations

from typing import Any

from tests.auth.helpers import PREFIX, clear_of_minute_boundary


async def test_a_malformed_request_counts_in_its_network_window(start_auth: Any) -> None:
    async with start_auth(ratelimit_auth_ip_per_minute=2) as limited, limited.client("198.18.10.1") as c:
        await clear_of_minute_boundary(limited.settings)
        malformed = [await c.post(f"{PREFIX}/magic-link/verify", json={}) for _ in range(2)]
        assert [r.status_code for r in malformed] == [422, 422]
        assert [r.headers["ratelimit-remaining"] for r in malformed] == ["1", "0"]
        # The window is spent: a well-formed token is refused before it is looked up.
        refused = await c.post(f"{PREFIX}/magic-link/verify", json={"token": "A" * 43})
        assert refused.status_code == 429, refused.text
        async with limited.client("198.18.10.2") as other:
            answer = await other.post(f"{PREFIX}/magic-link/verify", json={"token": "A" * 43})
            assert answer.status_code == 400, answer.text
