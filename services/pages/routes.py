"""HTTP of the account pages: each page and asset from memory, with the security headers.

The pages are plain clients of the public REST API on the same origin; nothing here reads a
database, a cookie or a token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.pages.assets import ASSET_PREFIX, Asset, load_assets, load_pages
from shared.errors import NotFound

# Scripts, styles and requests come from this origin only; no inline script or style, no eval,
# never framed, no form posting anywhere else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Revalidated on every load (the ETag makes that a 304): a deploy is seen at once, with
    # no versioned file names (no build step).
    "Cache-Control": "no-cache",
}

PAGES = load_pages()
ASSETS = load_assets()

router = APIRouter(include_in_schema=False)


def serve(asset: Asset, request: Request) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.content_type, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def _page_route(path: str) -> None:
    asset = PAGES[path]

    async def page(request: Request) -> Response:
        return serve(asset, request)

    router.add_api_route(path, page, methods=["GET", "HEAD"], name="page")


for _path in PAGES:
    _page_route(_path)


@router.api_route(ASSET_PREFIX + "{name:path}", methods=["GET", "HEAD"])
async def asset(name: str, request: Request) -> Response:
    found = ASSETS.get(ASSET_PREFIX + name)
    if found is None:
        raise NotFound()
    return serve(found, request)
