"""Metrics specific to the api service (the shared HTTP and rate-limit metrics live in shared/)."""

from __future__ import annotations

from prometheus_client import Counter

AUTH_FAILURES = Counter(
    "api_auth_failures_total",
    "Requests refused as unauthenticated, by reason.",
    ["reason"],  # missing, invalid, revoked, unknown_user
)
REVOCATION_CHECK_FAIL_OPEN = Counter(
    "api_revocation_check_fail_open_total",
    "Requests served without the revoked-session check because Redis was unavailable.",
)
JWKS_FETCHES = Counter(
    "api_jwks_fetches_total",
    "Fetches of the auth service's JWKS, by outcome.",
    ["outcome"],  # ok, error
)
