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
KEY_AUTH_FAILURES = Counter(
    "api_key_auth_failures_total",
    "Requests with an API key refused, by reason.",
    # malformed, wrong_env, unknown (no key with that id and secret), revoked, expired, scope,
    # not_allowed; bad_secret only if the database and the constant-time check ever disagree
    ["reason"],
)
REQUESTS_BY_CREDENTIAL = Counter(
    "api_authenticated_requests_total",
    "Requests that presented a verified credential, by its kind.",
    ["credential"],  # user, api_key
)
