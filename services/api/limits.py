"""The api's rate-limit windows.

The windows themselves are checked in `deps.authenticate` (one Lua call with the
revoked-session marker); the headers come from `shared/ratelimit_headers.py`, as in auth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID

from shared.access_tokens import AccessClaims
from shared.ratelimit import Window
from shared.settings import Settings


@dataclass(frozen=True)
class RatePolicy:
    """The api's three windows; periods are fixed by the design (tests may shorten them)."""

    org_limit: int
    user_limit: int
    endpoint_limit: int
    org_period_seconds: int = 3600
    user_period_seconds: int = 3600
    endpoint_period_seconds: int = 60

    @classmethod
    def from_settings(cls, settings: Settings) -> RatePolicy:
        return cls(
            org_limit=settings.ratelimit_org_per_hour,
            user_limit=settings.ratelimit_user_per_hour,
            endpoint_limit=settings.ratelimit_user_endpoint_per_minute,
        )

    def with_periods(self, org: int, user: int, endpoint: int) -> RatePolicy:
        return replace(
            self, org_period_seconds=org, user_period_seconds=user, endpoint_period_seconds=endpoint
        )

    def windows(self, claims: AccessClaims, method: str, route: str) -> list[Window]:
        user = str(claims.user_id)
        return [
            Window("org", str(claims.org_id), self.org_limit, self.org_period_seconds),
            Window("user", user, self.user_limit, self.user_period_seconds),
            Window(
                "user_endpoint",
                f"{user}:{method} {route}",
                self.endpoint_limit,
                self.endpoint_period_seconds,
            ),
        ]

    def key_windows(self, org_id: UUID, key_id: UUID, method: str, route: str) -> list[Window]:
        """An API key's windows: the org's (shared with its people) and the key's own, with the
        limits of a user."""
        key = str(key_id)
        return [
            Window("org", str(org_id), self.org_limit, self.org_period_seconds),
            Window("api_key", key, self.user_limit, self.user_period_seconds),
            Window(
                "api_key_endpoint",
                f"{key}:{method} {route}",
                self.endpoint_limit,
                self.endpoint_period_seconds,
            ),
        ]
