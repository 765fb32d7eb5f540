"""The verified caller every api rule is checked against, and the manager rule."""

from __future__ import annotations

from dataclasses import dataclass
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
    ip: str | None

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGERS

    def require_manager(self, detail: str | None = None) -> None:
        """Raise `NotManager` unless the caller is an owner or an admin."""
        if not self.is_manager:
            raise NotManager(detail)
