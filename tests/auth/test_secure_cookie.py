"""The refresh cookie is `__Secure-` whenever it is Secure (security review finding 14)."""

from __future__ import annotations

from typing import Any

from tests.auth.helpers import PREFIX, signup


def _set_cookie(response: Any) -> tuple[str, str, str]:
    (header,) = [h for h in response.headers.get_list("set-cookie") if "refresh" in h.split("=", 1)[0]]
    name, _, rest = header.partition("=")
    return name, rest.split(";", 1)[0], header


async def test_secure_cookie_has_the_secure_prefix_and_a_planted_plain_one_is_ignored(
    start_auth: Any,
) -> None:
    async with start_auth(cookie_secure=True) as app, app.client() as c:
        _, verified = await signup(c, app.settings)
        name, token, header = _set_cookie(verified)
        assert name == "__Secure-bb_refresh"
        assert "Secure" in header and "HttpOnly" in header
        c.cookies.clear()
        # A sibling subdomain could plant `bb_refresh`; it is not the cookie we read.
        planted = await c.post(f"{PREFIX}/refresh", headers={"Cookie": f"bb_refresh={token}"})
        assert planted.status_code == 401
        refreshed = await c.post(f"{PREFIX}/refresh", headers={"Cookie": f"__Secure-bb_refresh={token}"})
        assert refreshed.status_code == 200, refreshed.text
        assert _set_cookie(refreshed)[0] == "__Secure-bb_refresh"
        out = await c.post(
            f"{PREFIX}/logout", headers={"Cookie": f"__Secure-bb_refresh={_set_cookie(refreshed)[1]}"}
        )
        assert out.status_code == 204
        assert _set_cookie(out)[0] == "__Secure-bb_refresh"


async def test_plain_http_development_keeps_the_plain_name(start_auth: Any) -> None:
    async with start_auth(cookie_secure=False) as app, app.client() as c:
        _, verified = await signup(c, app.settings)
        name, _, header = _set_cookie(verified)
        assert name == "bb_refresh" and "Secure" not in header
