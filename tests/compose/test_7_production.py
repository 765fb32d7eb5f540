"""Part 7: the production overlay, with the ports moved (HTTP_PORT/HTTPS_PORT, finding 8) and
an unreachable ACME server (Traefik then serves its default certificate).

Finding 1: the overlay starts at all (migrate exits 0 with ENV=production). Also: HTTP
redirects to HTTPS, the refresh cookie is Secure, security headers are present, routes answer
only for PUBLIC_HOST, PostgreSQL and Redis publish no port.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.compose.accounts import SECURE_REFRESH_COOKIE, refresh_cookie, register
from tests.compose.stack import HTTP_PORT, HTTPS_PORT, SENDER, ComposeStack
from tests.compose.timings import part_timer, timed
from tests.e2e.helpers import PASSWORD, PROBLEM

pytestmark = [pytest.mark.compose, pytest.mark.slow]
_part = part_timer("part 7: production overlay (total)")
PROD_HTTP_PORT = HTTP_PORT + 1
SERVICES = {"postgres", "redis", "auth", "api", "worker", "traefik", "gateway-problems"}


@pytest.fixture(scope="module")
def production(stack: ComposeStack, client: httpx.Client) -> tuple[ComposeStack, str]:
    email = register(client, stack, "prod").email  # a verified user made before the switch
    stack.down(volumes=False)
    stack.files = ["compose.yaml", "compose.prod.yaml"]
    stack.set_env(
        APP_BASE_URL=f"https://localhost:{HTTPS_PORT}",
        EMAIL_FROM=SENDER,
        PUBLIC_HOST="localhost",
        ACME_EMAIL="ops@blockbot-ci.net",
        ACME_CA_SERVER="https://127.0.0.1:9/directory",
        RESEND_API_KEY="re_ci_never_used",
        RESEND_API_URL="http://127.0.0.1:9",
        HTTP_PORT=str(PROD_HTTP_PORT),
        HTTPS_PORT=str(HTTPS_PORT),
    )
    started = time.monotonic()
    stack.up()
    timed("part 7: up --wait (production overlay)", started)
    return stack, email


def test_every_service_healthy_and_migrate_done(production: tuple[ComposeStack, str]) -> None:
    stack, _ = production
    rows = {row["Service"]: row for row in stack.ps()}
    for service in SERVICES:
        assert rows[service]["Health"] == "healthy", rows[service]
    assert rows["migrate"]["ExitCode"] == 0, rows["migrate"]
    published = {
        p["PublishedPort"]
        for row in rows.values()
        for p in row.get("Publishers") or []
        if p.get("PublishedPort")
    }
    assert published == {PROD_HTTP_PORT, HTTPS_PORT}, published  # none for PostgreSQL or Redis


def test_http_redirects_to_https(production: tuple[ComposeStack, str]) -> None:
    response = httpx.get(f"http://127.0.0.1:{PROD_HTTP_PORT}/api/v1/me", follow_redirects=False, timeout=10)
    assert response.status_code in (301, 308), response.status_code
    assert response.headers["location"] == f"https://127.0.0.1:{HTTPS_PORT}/api/v1/me"


def test_secure_cookie_and_security_headers(production: tuple[ComposeStack, str]) -> None:
    _, email = production
    with httpx.Client(base_url=f"https://localhost:{HTTPS_PORT}", verify=False, timeout=30) as https:
        response = https.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        cookie = refresh_cookie(response, SECURE_REFRESH_COOKIE)[SECURE_REFRESH_COOKIE]
        assert cookie["secure"] and cookie["httponly"]
        assert "max-age=63072000" in response.headers["strict-transport-security"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        # Routes answer only for PUBLIC_HOST: another host name gets the gateway's 404 problem.
        other = https.get("/api/v1/me", headers={"Host": "elsewhere.example"})
        assert other.status_code == 404 and other.headers["content-type"].startswith(PROBLEM)
