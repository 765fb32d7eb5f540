"""The account pages as the auth service serves them (no browser): every page and file, the
security and cache headers, nothing else reachable, and one setting turning them off."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from devstack.api_docs import document_settings
from services.api.app import create_api_app
from services.auth.app import create_auth_app
from services.pages.assets import ASSET_PREFIX, PAGES, STATIC
from services.pages.routes import ASSETS, CONTENT_SECURITY_POLICY

HTML = sorted(STATIC.glob("*.html"))
SCRIPTS = sorted(STATIC.rglob("*.js"))


def auth_app(**overrides: object) -> FastAPI:
    """The auth app as it starts (no lifespan: the pages need no database)."""
    return create_auth_app(document_settings().model_copy(update=overrides))


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080") as http:
        yield http


@pytest.mark.parametrize("path", sorted(PAGES))
async def test_every_page_with_its_security_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    assert "<main" in response.text


def test_the_policy_allows_nothing_inline_nor_foreign() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY


async def test_files_are_revalidated_and_compressed(client: httpx.AsyncClient) -> None:
    first = await client.get(ASSET_PREFIX + "js/api.js", headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/javascript; charset=utf-8"
    assert first.headers["content-encoding"] == "gzip"
    assert first.content == (STATIC / "js" / "api.js").read_bytes()  # httpx decoded it
    assert first.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    again = await client.get(ASSET_PREFIX + "js/api.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    plain = await client.get(ASSET_PREFIX + "css/app.css", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(gzip.compress(plain.content)) < len(plain.content)


@pytest.mark.parametrize(
    "path",
    [
        "/pages/js/nope.js",
        "/pages/../routes.py",
        "/pages/%2e%2e/routes.py",
        "/pages/..%2froutes.py",
        "/pages/sign-in.html",  # a page only at its own path
        "/pages/",
        "/auth/",
        "/auth/sign-up/",
        "/accounts",
    ],
)
async def test_nothing_else_is_served(client: httpx.AsyncClient, path: str) -> None:
    request = client.build_request("GET", "http://localhost:8080/")
    request.url = request.url.copy_with(raw_path=path.encode())
    response = await client.send(request)
    assert response.status_code in (404, 307), (path, response.status_code)
    assert "onerror" not in response.text


def test_every_file_under_static_is_an_asset_or_a_page() -> None:
    on_disk = {path for path in STATIC.rglob("*") if path.is_file()}
    served = {STATIC / name for name in PAGES.values()} | {
        STATIC / name.removeprefix(ASSET_PREFIX) for name in ASSETS
    }
    assert on_disk == served


async def test_pages_off_with_one_setting() -> None:
    transport = httpx.ASGITransport(app=auth_app(pages_enabled=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080") as http:
        for path in [*PAGES, ASSET_PREFIX + "js/api.js"]:
            assert (await http.get(path)).status_code == 404, path


@pytest.mark.parametrize("page", HTML, ids=lambda p: p.name)
def test_html_has_no_inline_script_or_style_and_labels_every_field(page: Path) -> None:
    text = page.read_text()
    assert "<style" not in text and " style=" not in text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == []
    assert re.search(r"\son[a-z]+=", text) is None  # no inline event handlers
    assert '<html lang="en">' in text and '<meta name="viewport"' in text
    for field_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', text):
        assert f'for="{field_id}"' in text, f"{page}: #{field_id} has no label"
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", text):
        assert 'id="' in tag or re.search(r"<label>[^<]*" + re.escape(tag), text), tag


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(STATIC).as_posix())
def test_scripts_never_insert_html_nor_reach_another_origin(script: Path) -> None:
    text = script.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in text, f"{script}: {sink}"
    assert re.search(r"https?://", text) is None, script
    assert "localStorage" not in text and "sessionStorage" not in text  # tokens stay in memory


@pytest.mark.parametrize("service", ["auth", "api"])
async def test_docs_work_offline(service: str) -> None:
    """/docs of both services: Swagger UI from the service itself, never a CDN."""
    app = auth_app() if service == "auth" else create_api_app(document_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8001") as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assert len(urls) == 3, urls  # script, stylesheet, icon
        for url in urls:
            assert url.startswith("/docs/assets/"), url
            asset = await http.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 500
        assert "url: '/openapi.json'" in page.text
        assert (await http.get("/docs/assets/nope.js")).status_code == 404
        assert (await http.get("/redoc")).status_code == 404
