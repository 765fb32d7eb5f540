"""The public `User` object: one shape in every token response, `/me` and `/users`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel

from shared.roles import Role


class User(BaseModel):
    """A member of an organization, as every service returns it."""

    id: UUID
    org_id: UUID
    email: str
    name: str
    role: Role
    email_verified: bool
    created_at: datetime


class UserFacts(Protocol):
    """What every service's user row or caller has that the public `User` shows."""

    @property
    def org_id(self) -> UUID: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def email_verified_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...


def public_user(user_id: UUID, facts: UserFacts) -> User:
    """The public shape of a user, from any row or caller that has the facts."""
    return User(
        id=user_id,
        org_id=facts.org_id,
        email=facts.email,
        name=facts.name,
        role=Role(facts.role),
        email_verified=facts.email_verified_at is not None,
        created_at=facts.created_at,
    )
