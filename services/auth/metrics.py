"""Prometheus metrics of the auth service (auth events; HTTP metrics come from shared.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LOGINS = Counter(
    "auth_logins_total",
    "Sign-ins, by result (success, invalid_credentials, unverified; second_factor_required: a right"
    " password for an account with a second factor; second_factor_rejected: a wrong code or passkey).",
    ["result"],
)
REFRESHES = Counter(
    "auth_refresh_total",
    "Refresh-token exchanges, by result (rotated, grace_replay, invalid, expired, revoked, reuse_detected).",
    ["result"],
)
MAGIC_LINKS = Counter("auth_magic_links_total", "Magic links, by event (issued, consumed).", ["event"])
ONE_TIME_TOKENS = Counter(
    "auth_one_time_tokens_total",
    "One-time tokens, by purpose and event (issued, consumed, rejected).",
    ["purpose", "event"],
)
REGISTRATIONS = Counter(
    "auth_registrations_total",
    "Sign-up requests, by outcome (attempt, existing_account).",
    ["outcome"],
)
SESSIONS_CREATED = Counter(
    "auth_sessions_created_total",
    "Sessions created, by method (password, magic_link, ...).",
    ["method"],
)
SESSIONS_REVOKED = Counter(
    "auth_sessions_revoked_total",
    "Sessions revoked, by reason (logout, logout_all, user_revoked, reuse_detected, password_reset).",
    ["reason"],
)
PASSWORD_HASH_SECONDS = Histogram(
    "auth_password_hash_duration_seconds",
    "Time spent hashing or verifying one password in the worker pool, excluding queueing.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PASSWORD_HASH_WAITING = Gauge(
    "auth_password_hash_waiting",
    "Password hash operations waiting for a free slot in the bounded pool.",
)
PASSWORD_HASH_SHED = Counter(
    "auth_password_hash_shed_total",
    "Requests refused with a 503 because the password-hashing backlog of the process was full, "
    "by kind (verify: a password checked; hash: a new password hashed).",
    ["kind"],
)
UNVERIFIED_PURGED = Counter(
    "auth_unverified_signups_purged_total", "Sign-up attempts deleted after their link expired."
)
HOUSEKEEPING_DELETED = Counter(
    "auth_housekeeping_deleted_total",
    "Dead rows deleted by the hourly housekeeping, by kind (sessions, session_retired_tokens, "
    "one_time_tokens).",
    ["kind"],
)
PROVIDER_SIGN_INS = Counter(
    "auth_provider_sign_ins_total",
    "Completed external-provider attempts, by provider and outcome (signed_in, signed_up, "
    "invitation_accepted, linked).",
    ["provider", "outcome"],
)
PROVIDER_FAILURES = Counter(
    "auth_provider_failures_total",
    "External-provider attempts that failed, by provider and reason (state_missing, state_mismatch, "
    "expired, denied, provider_error, provider_unavailable, issuer_mismatch, invalid_id_token, "
    "invalid_response, email_unverified, account_exists, identity_linked_elsewhere, ...).",
    ["provider", "reason"],
)
