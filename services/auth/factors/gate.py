"""The seam every first factor goes through: an account with a second factor gets a challenge.

`accounts.service.start_session` asks here before opening a session: when the user has TOTP or a
passkey, no session is opened; a sign-in challenge is created instead (audited), naming the
methods that can finish it and, with passkeys, the WebAuthn options to answer.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from webauthn.helpers.structs import UserVerificationRequirement

from services.auth.audit import audit_user_event
from services.auth.factors import challenges, queries, webauthn
from services.auth.factors.challenges import Pending
from services.auth.factors.level import first_factor
from services.auth.factors.queries import Enrolled
from services.auth.identities.queries import UserRecord
from services.auth.state import AuthState, ClientInfo


async def offer(
    db: AsyncSession,
    state: AuthState,
    user_id: UUID,
    webauthn_challenge: bytes | None = None,
    *,
    enrolled: Enrolled | None = None,
) -> tuple[list[str], bytes | None, dict[str, Any] | None] | None:
    """What a challenge offers the user: (methods, WebAuthn challenge, its request options);
    None without a second factor. `webauthn_challenge` restates an existing challenge's;
    `enrolled` is the user's factors when the caller read them already (in this transaction)."""
    if enrolled is None:
        enrolled = await queries.enrolled(db, user_id)
    if not enrolled.any:
        return None
    methods = []
    if enrolled.totp:
        methods.append("totp")
    options = None
    if enrolled.passkeys:
        methods.append("webauthn")
        passkeys = await queries.passkeys_of(db, user_id)
        webauthn_challenge, options = webauthn.assertion_options(
            state.settings,
            passkeys,
            user_verification=UserVerificationRequirement.DISCOURAGED,
            challenge=webauthn_challenge,
        )
    if enrolled.recovery_codes:
        methods.append("recovery_code")
    return methods, webauthn_challenge if options is not None else None, options


async def challenge_if_enrolled(
    db: AsyncSession,
    state: AuthState,
    user: UserRecord,
    client: ClientInfo,
    *,
    method: str,
    enrolled: Enrolled | None = None,
) -> Pending | None:
    """A sign-in challenge when `user` has a second factor; None when the first factor suffices."""
    offered = await offer(db, state, user.id, enrolled=enrolled)
    if offered is None:
        return None
    methods, webauthn_challenge, options = offered
    token = await challenges.create(
        state,
        user_id=user.id,
        org_id=user.org_id,
        method=method,
        level=first_factor(method),
        webauthn_challenge=webauthn_challenge,
        credentials_version=user.credentials_version,
    )
    await audit_user_event(
        db,
        org_id=user.org_id,
        user_id=user.id,
        action="auth.second_factor_challenged",
        client=client,
        details={"method": method, "methods": methods},
    )
    return Pending(
        challenge=token,
        methods=methods,
        expires_in=state.settings.second_factor_challenge_ttl_seconds,
        webauthn=options,
    )
