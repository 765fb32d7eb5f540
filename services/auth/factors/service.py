"""Managing a user's second factors: TOTP enrolment and removal, recovery codes, passkeys.

Every change runs in the request's transaction, bound to the caller's org (the routes'
`TenantSession`), and is audited. Adding a factor proves it in the current session, which is
raised to `aal2`; the user's other sessions that were entered with one factor are revoked (they
would otherwise outlive the new requirement).
Removing the last factor is refused while the org requires one (`last-second-factor`); otherwise
it also removes the recovery codes (they only back a factor up) and revokes the user's other
sessions (entered with the factor, they would otherwise keep an aal2 level nothing backs now).
The routes require a recent authentication for all of these (`stepup.RecentClaims`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.accounts import queries as account_queries
from services.auth.audit import audit_user_event
from services.auth.factors import challenges, queries, recovery, totp, webauthn
from services.auth.factors.errors import (
    LastSecondFactor,
    NoPendingPasskey,
    NoPendingTotp,
    NoSecondFactor,
    PasskeyExists,
    PasskeyNotFound,
    PasskeyNotVerified,
    TotpAlreadyEnabled,
    TotpNotEnrolled,
    WrongCode,
)
from services.auth.factors.level import AAL2
from services.auth.factors.queries import Enrolled, PasskeyRow
from services.auth.factors.totp import Enrolment
from services.auth.identities import queries as identity_queries
from services.auth.metrics import SESSIONS_REVOKED
from services.auth.state import AuthState, ClientInfo
from shared.access_tokens import AccessClaims
from shared.errors import NotFound
from shared.sessions import revocation

REGISTER = "register"


@dataclass(frozen=True)
class Overview:
    enrolled: Enrolled
    passkeys: list[PasskeyRow]
    org_requires_second_factor: bool


async def overview(db: AsyncSession, claims: AccessClaims) -> Overview:
    return Overview(
        enrolled=await queries.enrolled(db, claims.user_id),
        passkeys=await queries.passkeys_of(db, claims.user_id),
        org_requires_second_factor=await queries.org_requires_second_factor(db, claims.org_id),
    )


async def _audit(
    db: AsyncSession, claims: AccessClaims, action: str, client: ClientInfo, **details: Any
) -> None:
    await audit_user_event(
        db,
        org_id=claims.org_id,
        user_id=claims.user_id,
        action=action,
        client=client,
        details=details or None,
    )


async def _after_enrolment(
    db: AsyncSession, state: AuthState, claims: AccessClaims, amr: str
) -> list[str] | None:
    """Raise the current session to aal2, revoke the other single-factor sessions, and make the
    first recovery codes when the user has none (returned, to be shown once)."""
    values = list(dict.fromkeys((*claims.amr, amr, "mfa")))
    await queries.raise_session_level(db, claims.session_id, amr=values, acr=AAL2)
    others = await queries.single_factor_sessions(db, claims.user_id, keep=claims.session_id)
    await revocation.revoke_sessions(db, state.redis, state.settings, others, reason="second_factor_enrolled")
    SESSIONS_REVOKED.labels("second_factor_enrolled").inc(len(others))
    if (await queries.enrolled(db, claims.user_id)).recovery_codes:
        return None
    return await recovery.replace_codes(db, user_id=claims.user_id, org_id=claims.org_id)


async def _lock_factors(db: AsyncSession, claims: AccessClaims) -> None:
    # The user row's update lock serializes a user's removals: two concurrent ones (the TOTP
    # and the last passkey) cannot each see the other factor and leave none.
    await account_queries.lock_credentials_version(db, claims.user_id)


async def _after_removal(db: AsyncSession, state: AuthState, claims: AccessClaims) -> None:
    if (await queries.enrolled(db, claims.user_id)).any:
        return
    if await queries.org_requires_second_factor(db, claims.org_id):
        raise LastSecondFactor()  # the removal rolls back with the transaction
    await queries.delete_recovery_codes(db, claims.user_id)
    others = await queries.other_live_sessions(db, claims.user_id, keep=claims.session_id)
    await revocation.revoke_sessions(db, state.redis, state.settings, others, reason="second_factor_removed")
    SESSIONS_REVOKED.labels("second_factor_removed").inc(len(others))


# --- TOTP --------------------------------------------------------------------------------------


async def begin_totp(
    db: AsyncSession, state: AuthState, claims: AccessClaims, client: ClientInfo
) -> Enrolment:
    user = await identity_queries.user_by_id(db, claims.user_id)
    if user is None:
        raise NotFound()
    secret = await totp.begin(db, state.secret_box, user_id=user.id, org_id=user.org_id)
    if secret is None:
        raise TotpAlreadyEnabled()
    await _audit(db, claims, "second_factor.totp_enrolment_started", client)
    return totp.provisioning(secret, email=user.email, issuer=state.settings.product_name)


async def enable_totp(
    db: AsyncSession, state: AuthState, claims: AccessClaims, code: str, client: ClientInfo
) -> list[str] | None:
    """Confirm an enrolment with a first code; the first recovery codes when the user had none."""
    checked = await totp.check(db, state.secret_box, claims.user_id, code, enable=True)
    if checked is None:
        raise (TotpAlreadyEnabled() if (await queries.enrolled(db, claims.user_id)).totp else NoPendingTotp())
    if not checked:
        raise WrongCode()
    codes = await _after_enrolment(db, state, claims, "otp")
    await _audit(db, claims, "second_factor.totp_enabled", client)
    return codes


async def disable_totp(db: AsyncSession, state: AuthState, claims: AccessClaims, client: ClientInfo) -> None:
    await _lock_factors(db, claims)
    if not await queries.delete_totp(db, claims.user_id):
        raise TotpNotEnrolled()
    await _after_removal(db, state, claims)
    await _audit(db, claims, "second_factor.totp_disabled", client)


# --- recovery codes ----------------------------------------------------------------------------


async def regenerate_recovery_codes(db: AsyncSession, claims: AccessClaims, client: ClientInfo) -> list[str]:
    codes = await recovery.regenerate(db, user_id=claims.user_id, org_id=claims.org_id, client=client)
    if codes is None:
        raise NoSecondFactor()
    return codes


# --- passkeys ----------------------------------------------------------------------------------


async def passkey_registration_options(
    db: AsyncSession, state: AuthState, claims: AccessClaims
) -> dict[str, Any]:
    user = await identity_queries.user_by_id(db, claims.user_id)
    if user is None:
        raise NotFound()
    existing = await queries.passkeys_of(db, claims.user_id)
    challenge, options = webauthn.registration_options(
        state.settings, user_id=user.id, email=user.email, name=user.name, existing=existing
    )
    await challenges.put_ceremony(state, REGISTER, str(claims.user_id), challenge)
    return options


@dataclass(frozen=True)
class Registered:
    passkey: PasskeyRow
    recovery_codes: list[str] | None


async def register_passkey(
    db: AsyncSession,
    state: AuthState,
    claims: AccessClaims,
    *,
    name: str,
    credential: dict[str, Any],
    client: ClientInfo,
) -> Registered:
    challenge = await challenges.take_ceremony(state, REGISTER, str(claims.user_id))
    if challenge is None:
        raise NoPendingPasskey()
    try:
        new = webauthn.verify_registration(state.settings, credential, challenge)
    except webauthn.InvalidCredential:
        raise PasskeyNotVerified() from None
    passkey_id = await queries.insert_passkey(
        db,
        user_id=claims.user_id,
        org_id=claims.org_id,
        credential_id=new.credential_id,
        public_key=new.public_key,
        sign_count=new.sign_count,
        name=name,
        backup_eligible=new.backup_eligible,
        transports=new.transports,
    )
    if passkey_id is None:
        raise PasskeyExists()
    codes = await _after_enrolment(db, state, claims, "swk" if new.backup_eligible else "hwk")
    await _audit(db, claims, "second_factor.passkey_added", client, passkey_id=str(passkey_id), name=name)
    row = await queries.lock_passkey(db, passkey_id)
    assert row is not None
    return Registered(row, codes)


async def remove_passkey(
    db: AsyncSession, state: AuthState, claims: AccessClaims, passkey_id: UUID, client: ClientInfo
) -> None:
    await _lock_factors(db, claims)
    if not await queries.delete_passkey(db, claims.user_id, passkey_id):
        raise PasskeyNotFound()
    await _after_removal(db, state, claims)
    await _audit(db, claims, "second_factor.passkey_removed", client, passkey_id=str(passkey_id))
