"""Rate limits of the unauthenticated auth endpoints: per client IP and per email hash.

Checked before any user lookup, fail closed (Redis down is a 503). Windows are per endpoint so
that, say, a burst of sign-ups does not lock a person out of logging in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Response

from services.auth.state import AuthState, ClientInfo
from shared.errors import AppError
from shared.ratelimit import Decision, Window, hash_identifier, raise_if_limited, ratelimit_headers


async def enforce(state: AuthState, endpoint: str, client: ClientInfo, email: str | None) -> Decision:
    """Check and record the windows for one request; raise 429 (or 503) when refused."""
    settings = state.settings
    windows = [
        Window("auth_ip", f"{endpoint}:{client.ip or 'unknown'}", settings.ratelimit_auth_ip_per_minute, 60),
    ]
    if email is not None:
        windows.append(
            Window(
                "auth_email",
                f"{endpoint}:{hash_identifier(email)}",
                settings.ratelimit_auth_email_per_hour,
                3600,
            )
        )
    decision = await state.limiter.check_fail_closed(windows)
    raise_if_limited(decision)
    return decision


async def enforce_ip(state: AuthState, endpoint: str, client: ClientInfo, limit: int) -> Decision:
    """Per-client-IP window of a token endpoint (refresh, one-time token verification).

    These take no email, but each request costs database work (and Argon2 for reset and
    invitation acceptance), so they are bounded too, before the token is looked up.
    """
    window = Window("auth_ip", f"{endpoint}:{client.ip or 'unknown'}", limit, 60)
    decision = await state.limiter.check_fail_closed([window])
    raise_if_limited(decision)
    return decision


@contextmanager
def limit_headers(decision: Decision, response: Response) -> Iterator[None]:
    """Put the RateLimit-* headers on the response, whether it succeeds or fails."""
    headers = ratelimit_headers(decision)
    response.headers.update(headers)
    try:
        yield
    except AppError as error:
        error.headers = {**headers, **error.headers}
        raise
