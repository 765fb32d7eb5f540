"""Calling the api's service layer directly (no HTTP): the caller as the api builds it, and a
refusal run in the caller's tenant transaction."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.api.me import queries as me_queries
from services.api.principal import Principal
from shared.access_tokens import AccessClaims
from shared.db import transaction
from tests.api.helpers import Member


async def principal(session: AsyncSession, member: Member) -> Principal:
    """The caller as `deps.current_user` builds it, loaded through the same query."""
    assert isinstance(session.bind, AsyncEngine)
    row = await me_queries.caller(session.bind, member.org_id, member.id)
    assert row is not None
    now = int(time.time())
    claims = AccessClaims(member.id, member.org_id, member.role, uuid.uuid4(), "jti", now, now + 900)
    return Principal(
        **vars(row), claims=claims, user_id=member.id, org_id=member.org_id, address=lambda: None
    )


async def refused(sessions, actor: Member, call, error: type[Exception]) -> Exception:
    """Run `call(session, principal)` in the actor's tenant transaction, expecting `error`."""
    with pytest.raises(error) as caught:
        async with transaction(sessions, actor.org_id) as session:
            await call(session, await principal(session, actor))
    return caught.value
