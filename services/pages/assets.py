"""The pages' files, read once: each page's HTML and the shared CSS and modules, with an ETag
and a gzip copy (the files never change while the process runs)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
ASSET_PREFIX = "/pages/"

# Public path -> HTML file. The auth pages are the paths the emails link to.
PAGES: dict[str, str] = {
    "/auth/sign-up": "sign-up.html",
    "/auth/sign-in": "sign-in.html",
    "/auth/forgot-password": "forgot-password.html",
    "/auth/verify-email": "verify-email.html",
    "/auth/magic": "magic.html",
    "/auth/reset-password": "reset-password.html",
    "/auth/accept-invitation": "accept-invitation.html",
    # Where an external provider's sign-in of an account with a second factor lands.
    "/auth/second-factor": "second-factor.html",
    "/account": "account.html",
    "/org": "org.html",
}

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str
    etag: str


def _load(path: Path) -> Asset:
    body = path.read_bytes()
    return Asset(
        body=body,
        # mtime=0: the same bytes (and ETag) on every start and replica.
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        content_type=CONTENT_TYPES[path.suffix],
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    )


def load_pages() -> dict[str, Asset]:
    return {route: _load(STATIC / name) for route, name in PAGES.items()}


def load_assets() -> dict[str, Asset]:
    """Every CSS, JS and SVG file under static/, by its public path (/pages/js/api.js).

    A fixed table: a request names a key of it or gets a 404, so no request path ever reaches
    the file system (no traversal to guard)."""
    return {
        ASSET_PREFIX + path.relative_to(STATIC).as_posix(): _load(path)
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.suffix in CONTENT_TYPES and path.suffix != ".html"
    }
