"""Reading users and organizations, and the identity every login path returns."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.identities import queries
from services.auth.identities.queries import UserRecord
from services.auth.state import AuthState


def normalize_email(email: str) -> str:
    """The form addresses are compared in: trimmed, lower case."""
    return email.strip().lower()


@dataclass(frozen=True)
class Identity:
    """A user with their organization, as returned in token responses."""

    user: UserRecord
    org_name: str


async def find_user_by_email(state: AuthState, email: str) -> UserRecord | None:
    """Cross-tenant lookup (auth_identity_lookup policy), one statement in an implicit
    transaction of its own."""
    return await queries.user_by_email_alone(state.sessionmaker, normalize_email(email))


async def load_identity(db: AsyncSession, user_id: UUID) -> Identity | None:
    """The user and their org; the transaction must be bound to the user's org."""
    user = await queries.user_by_id(db, user_id)
    if user is None:
        return None
    org_name = await queries.org_name(db, user.org_id)
    if org_name is None:
        return None
    return Identity(user, org_name)
