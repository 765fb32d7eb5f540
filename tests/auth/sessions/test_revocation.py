"""The sessions service called directly (no HTTP): a replayed refresh token ends its session, and
a user lists and revokes their own sessions only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.auth.sessions import service as sessions
from shared.errors import NotFound, Unauthorized
from tests.auth.helpers import (
    AuthApp,
    signed_in,
    signup,
)
from tests.auth.service_calls import CLIENT, audit_events, ids_of


async def test_a_replayed_refresh_token_revokes_its_whole_session(start_auth: Any, admin_dsn: str) -> None:
    # No grace window: the previous token is reuse as soon as it has been rotated.
    async with start_auth(refresh_reuse_grace_seconds=0) as auth, auth.client() as client:
        _, first = await signed_in(client, auth.settings)
        rotated = await sessions.refresh(auth.state, first, CLIENT)
        assert rotated.refresh_token != first
        with pytest.raises(Unauthorized):
            await sessions.refresh(auth.state, first, CLIENT)
        with pytest.raises(Unauthorized):
            await sessions.refresh(auth.state, rotated.refresh_token, CLIENT)
    user_id = rotated.identity.user.id
    events = await audit_events(admin_dsn, user_id)
    assert events[-1] == ("session.refresh_reuse_detected", "session", str(rotated.session_id))


async def test_sessions_are_listed_and_revoked_by_their_own_user_only(
    auth: AuthApp, client: httpx.AsyncClient, admin_dsn: str
) -> None:
    _, mine = await signup(client, auth.settings)
    _, theirs = await signup(client, auth.settings)
    org_id, user_id = ids_of(mine)
    their_org, their_user = ids_of(theirs)
    [own] = await sessions.list_sessions(auth.state, org_id=org_id, user_id=user_id)
    [other] = await sessions.list_sessions(auth.state, org_id=their_org, user_id=their_user)
    with pytest.raises(NotFound):
        await sessions.revoke_session(
            auth.state, org_id=org_id, user_id=user_id, session_id=other.id, client=CLIENT
        )
    for _ in range(2):  # revoking a revoked session again is a no-op
        await sessions.revoke_session(
            auth.state, org_id=org_id, user_id=user_id, session_id=own.id, client=CLIENT
        )
    assert await sessions.list_sessions(auth.state, org_id=org_id, user_id=user_id) == []
    assert [e for e in await audit_events(admin_dsn, user_id) if e[0] == "session.revoked"] == [
        ("session.revoked", "session", str(own.id))
    ]
    assert await sessions.logout_all(auth.state, org_id=their_org, user_id=their_user, client=CLIENT) == 1
