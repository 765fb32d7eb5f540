"""One-time tokens (magic link, email verification, password reset, invitation).

A token is 32 random bytes handed out once (base64url, in an emailed link's fragment); only its
SHA-256 is stored. Consumption is one conditional UPDATE, so among any number of concurrent
verifications exactly one sees the row: the others find `consumed_at` already set when the
row lock is released (READ COMMITTED re-evaluates the WHERE clause).
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.auth.metrics import MAGIC_LINKS, ONE_TIME_TOKENS
from services.auth.one_time_tokens import queries
from services.auth.one_time_tokens.queries import ConsumedToken
from shared.db import set_tenant, transaction
from shared.opaque_tokens import new_token, token_hash
from shared.settings import Settings


class Purpose(StrEnum):
    MAGIC_LINK = "magic_link"
    EMAIL_VERIFICATION = "email_verification"
    PASSWORD_RESET = "password_reset"
    INVITATION = "invitation"


def ttl_seconds(settings: Settings, purpose: Purpose) -> int:
    """How long a token of `purpose` lives, from the settings."""
    return {
        Purpose.MAGIC_LINK: settings.magic_link_ttl_seconds,
        Purpose.EMAIL_VERIFICATION: settings.email_verification_ttl_seconds,
        Purpose.PASSWORD_RESET: settings.password_reset_ttl_seconds,
        Purpose.INVITATION: settings.invitation_ttl_seconds,
    }[purpose]


async def issue(
    session: AsyncSession,
    settings: Settings,
    *,
    purpose: Purpose,
    org_id: UUID,
    user_id: UUID | None = None,
    invitation_id: UUID | None = None,
    ttl: int | None = None,
) -> str:
    """Store a new token (transaction bound to `org_id`) and return it; it is never stored raw."""
    token, digest = new_token()
    seconds = ttl if ttl is not None else ttl_seconds(settings, purpose)
    await queries.insert(
        session,
        org_id=org_id,
        user_id=user_id,
        invitation_id=invitation_id,
        purpose=str(purpose),
        digest=digest,
        ttl_seconds=seconds,
    )
    ONE_TIME_TOKENS.labels(str(purpose), "issued").inc()
    if purpose is Purpose.MAGIC_LINK:
        MAGIC_LINKS.labels("issued").inc()
    return token


async def is_live(sessionmaker: async_sessionmaker[AsyncSession], purpose: Purpose, token: str) -> bool:
    """Whether the token exists, unused and unexpired (a cheap check before costly work)."""
    digest = token_hash(token)
    if digest is None:
        return False
    async with transaction(sessionmaker) as session:
        # Cross-tenant read (auth_identity_lookup policy).
        return await queries.is_live(session, purpose=str(purpose), digest=digest)


async def consume(session: AsyncSession, purpose: Purpose, token: str) -> ConsumedToken | None:
    """Mark the token used and bind the transaction to its org; None if unknown, used or expired."""
    digest = token_hash(token)
    if digest is None:
        ONE_TIME_TOKENS.labels(str(purpose), "rejected").inc()
        return None
    # Cross-tenant read (auth_identity_lookup policy) to learn the org; writes need the tenant.
    org_id = await queries.org_of(session, purpose=str(purpose), digest=digest)
    if org_id is None:
        ONE_TIME_TOKENS.labels(str(purpose), "rejected").inc()
        return None
    await set_tenant(session, org_id)
    consumed = await queries.consume(session, purpose=str(purpose), digest=digest)
    if consumed is None:
        ONE_TIME_TOKENS.labels(str(purpose), "rejected").inc()
        return None
    ONE_TIME_TOKENS.labels(str(purpose), "consumed").inc()
    if purpose is Purpose.MAGIC_LINK:
        MAGIC_LINKS.labels("consumed").inc()
    return consumed


async def retire_outstanding(session: AsyncSession, *, user_id: UUID, purposes: tuple[Purpose, ...]) -> None:
    """Consume every still-valid token of the user for these purposes (tenant already bound)."""
    await queries.retire_outstanding(session, user_id=user_id, purposes=[str(p) for p in purposes])
