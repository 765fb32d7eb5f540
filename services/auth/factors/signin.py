"""Signing in with a second factor: finishing a challenge, passwordless passkeys, reauthentication.

A failed attempt is audited (committed) before the refusal is raised; a refused sign-count
regression (a cloned authenticator) is audited as such. Attempts are limited per challenge
(`challenges.count_attempt`) and per account (`limits.enforce_second_factor`, checked first).
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn.helpers.structs import UserVerificationRequirement

from services.auth.accounts.service import INVALID_CREDENTIALS, Issued, issue_access_token, open_session
from services.auth.audit import audit_user_event
from services.auth.factors import challenges, gate, queries, recovery, totp, webauthn
from services.auth.factors.challenges import Attempt, Challenge, Pending
from services.auth.factors.errors import (
    InvalidChallenge,
    PasskeyChallengeUnknown,
    PasskeyRefused,
    ReauthenticationRefused,
    SecondFactorNeeded,
    SecondFactorRejected,
)
from services.auth.factors.level import SessionLevel, passwordless, with_second
from services.auth.identities import queries as identity_queries
from services.auth.identities.queries import UserRecord
from services.auth.identities.service import load_identity
from services.auth.limits import enforce_second_factor
from services.auth.metrics import LOGINS
from services.auth.sessions import queries as session_queries
from services.auth.state import AuthState, ClientInfo
from shared.access_tokens import AccessClaims
from shared.db import transaction
from shared.errors import AppError, Unauthorized

PASSWORDLESS = "passwordless"
REAUTHENTICATE = "reauthenticate"
T = TypeVar("T")


def _settled(outcome: T | AppError, *, login_refused: str | None = None) -> T:
    """The result, or its refusal raised: a refusal is returned out of the transaction first, so
    that its audit row commits. A sign-in counts in LOGINS, as a success or as `login_refused`."""
    if login_refused is not None:
        LOGINS.labels(login_refused if isinstance(outcome, AppError) else "success").inc()
    if isinstance(outcome, AppError):
        raise outcome
    return outcome


async def _verify_passkey(
    db: AsyncSession,
    state: AuthState,
    credential: dict[str, Any],
    *,
    user_id: UUID,
    challenge: bytes,
    require_user_verification: bool,
    client: ClientInfo,
) -> str | None:
    """The assertion's `amr` (`hwk`/`swk`) when one of the user's passkeys made it; None otherwise
    (a sign-count regression is audited)."""
    credential_id = webauthn.presented_credential_id(credential)
    if credential_id is None:
        return None
    found = await queries.passkey_by_credential_id(db, credential_id)
    if found is None or found.user_id != user_id:
        return None
    passkey = await queries.lock_passkey(db, found.id)
    if passkey is None:
        return None
    try:
        assertion = webauthn.verify_assertion(
            state.settings,
            credential,
            challenge=challenge,
            passkey=passkey,
            require_user_verification=require_user_verification,
        )
    except webauthn.InvalidCredential:
        return None
    if assertion.regressed:
        await audit_user_event(
            db,
            org_id=passkey.org_id,
            user_id=passkey.user_id,
            action="second_factor.passkey_sign_count_regressed",
            client=client,
            details={
                "passkey_id": str(passkey.id),
                "stored": passkey.sign_count,
                "presented": assertion.sign_count,
            },
        )
        return None
    await queries.record_passkey_use(db, passkey.id, assertion.sign_count)
    return assertion.amr


# --- finishing a sign-in challenge -------------------------------------------------------------


async def describe(state: AuthState, token: str) -> Pending:
    """A live challenge restated (for a page that received only its token, e.g. after an
    external provider's redirect): its methods, remaining lifetime and WebAuthn options."""
    challenge = await challenges.load(state, token)
    if challenge is None:
        raise InvalidChallenge()
    async with transaction(state.sessionmaker, challenge.org_id) as db:
        offered = await gate.offer(db, state, challenge.user_id, challenge.webauthn_challenge)
    if offered is None:
        raise InvalidChallenge()
    methods, _, options = offered
    ttl = await challenges.remaining_seconds(state, challenge)
    return Pending(challenge=token, methods=methods, expires_in=ttl, webauthn=options)


async def finish(
    state: AuthState,
    request: Request,
    *,
    token: str,
    totp_code: str | None,
    recovery_code: str | None,
    credential: dict[str, Any] | None,
    client: ClientInfo,
) -> Issued:
    """Finish a sign-in challenge with one of its user's second factors: a new aal2 session."""
    challenge = await challenges.load(state, token)
    if challenge is None:
        raise InvalidChallenge()
    await enforce_second_factor(
        state, request, str(challenge.user_id), client, guessable=totp_code is not None
    )
    attempt = await challenges.count_attempt(state, challenge)
    if attempt is Attempt.GONE:
        raise InvalidChallenge()
    if attempt is Attempt.EXHAUSTED:
        raise InvalidChallenge("Too many attempts for this sign-in; sign in again.")
    outcome = await _attempt(state, challenge, totp_code, recovery_code, credential, client)
    return _settled(outcome, login_refused="second_factor_rejected")


async def _attempt(
    state: AuthState,
    challenge: Challenge,
    totp_code: str | None,
    recovery_code: str | None,
    credential: dict[str, Any] | None,
    client: ClientInfo,
) -> Issued | AppError:
    async with transaction(state.sessionmaker, challenge.org_id) as db:
        # Read under the share lock: a password reset (which bumps the credentials version)
        # either committed before, and voids the challenge, or waits for this transaction.
        enabled = await identity_queries.lock_if_enabled(db, challenge.user_id)
        user = await identity_queries.user_by_id(db, challenge.user_id) if enabled else None
        if user is None or user.credentials_version != challenge.credentials_version:
            await challenges.consume(state, challenge)
            return InvalidChallenge()
        method, amr = await _prove(db, state, user, challenge, totp_code, recovery_code, credential, client)
        if amr is None:
            await audit_user_event(
                db,
                org_id=user.org_id,
                user_id=user.id,
                action="auth.second_factor_failed",
                client=client,
                details={"method": challenge.method, "second_factor": method},
            )
            return SecondFactorRejected()
        if not await challenges.consume(state, challenge):
            # Finished by a concurrent request with another factor: this one opens nothing.
            raise InvalidChallenge()
        issued = await open_session(
            db, state, user, client, method=challenge.method, level=with_second(challenge.level, amr)
        )
        await audit_user_event(
            db,
            org_id=user.org_id,
            user_id=user.id,
            action="auth.login",
            client=client,
            details={"method": challenge.method, "second_factor": method},
        )
    return issued


async def _prove(
    db: AsyncSession,
    state: AuthState,
    user: UserRecord,
    challenge: Challenge,
    totp_code: str | None,
    recovery_code: str | None,
    credential: dict[str, Any] | None,
    client: ClientInfo,
) -> tuple[str, str | None]:
    """(the factor presented, its amr value or None when it did not prove it)."""
    if totp_code is not None:
        return "totp", "otp" if await totp.check(db, state.secret_box, user.id, totp_code) else None
    if recovery_code is not None:
        return "recovery_code", "otp" if await recovery.spend(
            db, state, user, recovery_code, client
        ) else None
    if credential is not None and challenge.webauthn_challenge is not None:
        amr = await _verify_passkey(
            db,
            state,
            credential,
            user_id=user.id,
            challenge=challenge.webauthn_challenge,
            require_user_verification=False,
            client=client,
        )
        return "webauthn", amr
    return "webauthn", None


# --- passwordless passkeys ---------------------------------------------------------------------


def _ceremony_name(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


async def passkey_options(state: AuthState, kind: str = PASSWORDLESS) -> dict[str, Any]:
    """Options for a discoverable-credential assertion with user verification (no user named)."""
    challenge, options = webauthn.assertion_options(
        state.settings, [], user_verification=UserVerificationRequirement.REQUIRED
    )
    await challenges.put_ceremony(state, kind, _ceremony_name(challenge), challenge)
    return options


async def _taken_challenge(state: AuthState, credential: dict[str, Any], kind: str) -> bytes:
    presented = webauthn.presented_challenge(credential)
    if presented is None:
        raise PasskeyRefused()
    challenge = await challenges.take_ceremony(state, kind, _ceremony_name(presented))
    if challenge is None:
        raise PasskeyChallengeUnknown()
    return challenge


async def sign_in_with_passkey(state: AuthState, credential: dict[str, Any], client: ClientInfo) -> Issued:
    """Passwordless: a discoverable passkey with user verification opens an aal2 session."""
    challenge = await _taken_challenge(state, credential, PASSWORDLESS)
    credential_id = webauthn.presented_credential_id(credential)
    if credential_id is None:
        raise PasskeyRefused()
    async with transaction(state.sessionmaker) as lookup:
        found = await queries.passkey_by_credential_id(lookup, credential_id)
    handle = webauthn.user_handle(credential)
    if found is None or (handle is not None and handle != found.user_id.bytes):
        raise PasskeyRefused()
    outcome: Issued | AppError
    async with transaction(state.sessionmaker, found.org_id) as db:
        amr = await _verify_passkey(
            db,
            state,
            credential,
            user_id=found.user_id,
            challenge=challenge,
            require_user_verification=True,
            client=client,
        )
        user = await identity_queries.user_by_id(db, found.user_id)
        if amr is None or user is None or not await identity_queries.lock_if_enabled(db, found.user_id):
            outcome = PasskeyRefused()
        else:
            outcome = await open_session(db, state, user, client, method="passkey", level=passwordless(amr))
            await audit_user_event(
                db,
                org_id=user.org_id,
                user_id=user.id,
                action="auth.login",
                client=client,
                details={"method": "passkey"},
            )
    return _settled(outcome, login_refused="invalid_credentials")


# --- reauthentication (step-up) ----------------------------------------------------------------


async def reauthenticate(
    state: AuthState,
    request: Request,
    claims: AccessClaims,
    *,
    password: str | None,
    totp_code: str | None,
    recovery_code: str | None,
    credential: dict[str, Any] | None,
    client: ClientInfo,
) -> str:
    """Prove again, in the caller's session, a factor it has: a TOTP code, a passkey or a
    recovery code when the user has a second factor, else the password; an access token of the
    session with `auth_time` now."""
    await enforce_second_factor(
        state, request, str(claims.user_id), client, guessable=password is not None or totp_code is not None
    )
    challenge = await _taken_challenge(state, credential, REAUTHENTICATE) if credential is not None else None
    matched = False
    if password is not None:
        async with transaction(state.sessionmaker, claims.org_id) as db:
            # A stolen session that knows the password must not pass for the person with the
            # factor; refused before the password is checked (no password oracle either).
            if (await queries.enrolled(db, claims.user_id)).any:
                raise SecondFactorNeeded()
            user = await identity_queries.user_by_id(db, claims.user_id)
        matched = await state.passwords.verify(user.password_hash if user else None, password)
    outcome: str | AppError
    async with transaction(state.sessionmaker, claims.org_id) as db:
        proven = matched
        if totp_code is not None:
            proven = bool(await totp.check(db, state.secret_box, claims.user_id, totp_code))
        elif recovery_code is not None:
            user = await identity_queries.user_by_id(db, claims.user_id)
            proven = user is not None and await recovery.spend(db, state, user, recovery_code, client)
        elif challenge is not None and credential is not None:
            proven = (
                await _verify_passkey(
                    db,
                    state,
                    credential,
                    user_id=claims.user_id,
                    challenge=challenge,
                    require_user_verification=False,
                    client=client,
                )
                is not None
            )
        row = (
            await session_queries.mark_reauthenticated(db, claims.session_id, claims.user_id)
            if proven
            else None
        )
        identity = await load_identity(db, claims.user_id) if row is not None else None
        if row is None or identity is None:
            await audit_user_event(
                db,
                org_id=claims.org_id,
                user_id=claims.user_id,
                action="auth.reauthentication_failed",
                client=client,
            )
            outcome = Unauthorized(INVALID_CREDENTIALS) if password is not None else ReauthenticationRefused()
        else:
            await audit_user_event(
                db, org_id=claims.org_id, user_id=claims.user_id, action="auth.reauthenticated", client=client
            )
            level = SessionLevel(tuple(row.amr), row.acr, int(row.auth_time.timestamp()))
            outcome = issue_access_token(state, identity, claims.session_id, level)
    return _settled(outcome)
