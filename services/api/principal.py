"""The verified caller every api rule is checked against, and the manager rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from uuid import UUID

from services.api.me.queries import CallerRow
from shared.access_tokens import AccessClaims
from shared.errors import Forbidden
from shared.roles import MANAGERS


class NotManager(Forbidden):
    default_detail = "Only an owner or an admin can do this."


@dataclass(frozen=True)
class Principal(CallerRow):
    """The verified caller: token claims, their CURRENT user row and org (roles come from the
    database, never the possibly stale claim), and their address for the audit log."""

    claims: AccessClaims
    user_id: UUID
    org_id: UUID
    # Worked out only when read (`ip`): most requests write no audit event.
    address: Callable[[], str | None] = field(repr=False, compare=False)

    @cached_property
    def ip(self) -> str | None:
        """The client address (X-Forwarded-For only from trusted proxies), None if unknown."""
        return self.address()

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGERS

    def require_manager(self, detail: str | None = None) -> None:
        """Raise `NotManager` unless the caller is an owner or an admin."""
        if not self.is_manager:
            raise NotManager(detail)
