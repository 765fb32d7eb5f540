"""Role names for the current migration run, handed over by the migrate job via Alembic config."""

from __future__ import annotations

from dataclasses import dataclass

from alembic import context


@dataclass(frozen=True)
class Roles:
    """The database roles a deployment uses; names are prefixed so test runs never collide."""

    owner: str
    auth: str
    api: str

    @classmethod
    def for_prefix(cls, prefix: str) -> Roles:
        return cls(owner=f"{prefix}_owner", auth=f"{prefix}_auth", api=f"{prefix}_api")


def roles() -> Roles:
    """The roles of the running migration (set by services.migrate)."""
    value = context.config.attributes["roles"]
    assert isinstance(value, Roles)
    return value
