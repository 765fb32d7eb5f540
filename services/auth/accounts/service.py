"""Accounts: password and magic-link login, password reset (sign-up lives in `signups`).

Answers that must not reveal whether an address has an account (magic-link, password/forgot,
login failure) do the same kind of work either way: a login for an unknown address verifies
against a dummy hash. Emails are queued inside the request's transaction, after the rate-limit check has
just proven Redis reachable; a failed enqueue rolls the transaction back and is a 503 (never a
silently lost email).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import emails
from services.auth.accounts import queries
from services.auth.audit import UserEvent, audit_user_event, request_id, user_event
from services.auth.deferred import detach
from services.auth.factors import queries as factor_queries
from services.auth.factors.challenges import Pending
from services.auth.factors.gate import challenge_if_enrolled
from services.auth.factors.level import SessionLevel, first_factor
from services.auth.factors.queries import Enrolled
from services.auth.identities import queries as identity_queries
from services.auth.identities.queries import LockedUser, UserRecord
from services.auth.identities.service import Identity, find_user_by_email, load_identity
from services.auth.limits import MailBudget
from services.auth.metrics import LOGINS
from services.auth.one_time_tokens.service import Purpose, consume, is_live, issue, retire_outstanding
from services.auth.sessions import service as sessions
from services.auth.signups import queries as signup_queries
from services.auth.state import AuthState, ClientInfo
from services.auth.tokens import mint_access_token
from shared.access_tokens import AccessClaims
from shared.db import transaction
from shared.errors import AppError, Unauthorized, WrongCurrentPassword

logger = logging.getLogger("blockbot.auth.accounts")

INVALID_CREDENTIALS = "The email or password is incorrect, or the email is not verified yet."
INVALID_LINK = "The link is invalid, expired or already used."


class InvalidLink(AppError):
    """A one-time token that is unknown, expired or used (400: the request cannot succeed)."""

    status, slug, title = 400, "invalid-token", "Invalid or Expired Token"
    default_detail = INVALID_LINK


@dataclass(frozen=True)
class Issued:
    """A new session: what the token response and the refresh cookie are made of."""

    identity: Identity
    session_id: UUID
    refresh_token: str
    access_token: str
    level: SessionLevel
    # The org requires a second factor and the user has none: the api refuses these tokens
    # until one is enrolled (the auth service's factor routes accept them).
    second_factor_enrolment_required: bool = False


def issue_access_token(state: AuthState, identity: Identity, session_id: UUID, level: SessionLevel) -> str:
    """A signed access token for one session of the identity's user, at the session's level."""
    user = identity.user
    return mint_access_token(
        state.keyring,
        state.settings,
        user_id=user.id,
        org_id=user.org_id,
        role=user.role,
        session_id=session_id,
        level=level,
    )


async def start_session(
    db: AsyncSession,
    state: AuthState,
    user: UserRecord,
    client: ClientInfo,
    *,
    method: str,
    level: SessionLevel | None = None,
    locked: LockedUser | None = None,
    audit_login: bool = False,
) -> Issued | Pending:
    """The seam of every first factor (transaction bound to the user's org); 401 when disabled.

    An account with a second factor gets no session: a sign-in challenge (`Pending`) that only a
    code or an assertion finishes (`factors/signin.py`). Otherwise a session at the first
    factor's level, audited (with `audit_login`, `auth.login` too). `level` is for a first factor that
    proved more than itself (an external provider's MFA the operator trusts): multi-factor, it
    opens the session at once. `locked` is the user row the caller locked already in this
    transaction (`identities.queries.bind_and_lock_credentials`); without it, it is locked here.
    """
    if locked is None:
        locked = await identity_queries.lock_for_session(db, user.id)
    if locked is None or not locked.enabled:
        # Disabled by an operator: the same answer as bad credentials, and nothing is written.
        raise Unauthorized(INVALID_CREDENTIALS)
    level = level or first_factor(method)
    if not level.multi_factor:
        enrolled = Enrolled(totp=locked.totp, passkeys=locked.passkeys, recovery_codes=locked.recovery_codes)
        pending = await challenge_if_enrolled(db, state, user, client, method=method, enrolled=enrolled)
        if pending is not None:
            return pending
    return await open_session(
        db, state, user, client, method=method, level=level, locked=locked, login=audit_login
    )


async def open_session(
    db: AsyncSession,
    state: AuthState,
    user: UserRecord,
    client: ClientInfo,
    *,
    method: str,
    level: SessionLevel,
    locked: LockedUser | None = None,
    login: bool = False,
) -> Issued:
    """Open a session at `level` (the caller proved it and locked the enabled user row), audited
    (`session.created`, then with `login` `auth.login`). `locked`: that row as the lock read it,
    with its org (else read here)."""
    method_details = {"method": method, "amr": list(level.amr), "acr": level.acr}

    def events(session_id: UUID) -> list[UserEvent]:
        created = user_event(
            "session.created", user_id=user.id, session_id=session_id, details=method_details
        )
        if not login:
            return [created]
        return [created, user_event("auth.login", user_id=user.id, details={"method": method})]

    session_id, refresh_token = await sessions.create_session(
        db,
        state,
        org_id=user.org_id,
        user_id=user.id,
        client=client,
        method=method,
        level=level,
        events=events,
    )
    if locked is None:
        identity = await load_identity(db, user.id)
        requires = not level.multi_factor and await factor_queries.org_requires_second_factor(db, user.org_id)
    else:
        identity = None if locked.org_name is None else Identity(locked.user, locked.org_name)
        requires = locked.org_requires_second_factor
    if identity is None:  # pragma: no cover - the user row is locked in this transaction
        raise Unauthorized(INVALID_CREDENTIALS)
    enrol = not level.multi_factor and requires
    access = issue_access_token(state, identity, session_id, level)
    return Issued(identity, session_id, refresh_token, access, level, enrol)


async def _consume_for_user(db: AsyncSession, purpose: Purpose, token: str) -> UserRecord:
    consumed = await consume(db, purpose, token)
    if consumed is None or consumed.user_id is None:
        raise InvalidLink()
    user = await identity_queries.user_by_id(db, consumed.user_id)
    if user is None:
        raise InvalidLink()
    return user


async def _mark_verified(db: AsyncSession, user: UserRecord, client: ClientInfo) -> UserRecord:
    if user.verified:
        return user
    await queries.mark_email_verified(db, user.id)
    await _audit(db, user, "user.email_verified", client)
    return user


async def _audit(
    db: AsyncSession, user: UserRecord, action: str, client: ClientInfo, details: dict[str, Any] | None = None
) -> None:
    """Record `action` by `user` on their own account."""
    await audit_user_event(
        db, org_id=user.org_id, user_id=user.id, action=action, client=client, details=details
    )


# --- password login ----------------------------------------------------------------------------


async def _audit_failed_login(state: AuthState, user: UserRecord, client: ClientInfo) -> None:
    event = user_event("auth.login_failed", user_id=user.id)
    await queries.audit_alone(
        state.sessionmaker, user.org_id, user.id, event, ip=client.ip, request_id=request_id()
    )


async def login(state: AuthState, *, email: str, password: str, client: ClientInfo) -> Issued | Pending:
    """Log in with a password; 401 for an unknown address, a wrong password or an unverified one.

    A full hashing backlog is a 503 (`HashingBusy`) before the address is looked up: the same
    answer, in the same time, whether or not it has an account."""
    with state.passwords.admit("verify"):
        user = await find_user_by_email(state, email)
        matched = await state.passwords.verify(user.password_hash if user else None, password)
        if user is None or not matched:
            LOGINS.labels("invalid_credentials").inc()
            if user is not None:
                # After the answer: the write would make a known address's failure slower.
                detach("login_failed", lambda: _audit_failed_login(state, user, client))
            raise Unauthorized(INVALID_CREDENTIALS)
        if not user.verified:
            LOGINS.labels("unverified").inc()
            raise Unauthorized(INVALID_CREDENTIALS)
        assert user.password_hash is not None
        new_hash = (
            await state.passwords.hash(password) if state.passwords.needs_rehash(user.password_hash) else None
        )
    async with transaction(state.sessionmaker) as db:
        # The password was checked against the version read before hashing; a reset that
        # committed since (it bumps the version under this row's lock) voids the check.
        locked = await identity_queries.bind_and_lock_credentials(db, user.org_id, user.id)
        if locked is None or locked.user.credentials_version != user.credentials_version:
            LOGINS.labels("invalid_credentials").inc()
            raise Unauthorized(INVALID_CREDENTIALS)
        if new_hash is not None:
            await queries.rehash_password(db, user.id, new_hash)
            locked = locked.model_copy(
                update={"user": locked.user.model_copy(update={"password_hash": new_hash})}
            )
        issued = await start_session(
            db, state, user, client, method="password", locked=locked, audit_login=True
        )
    LOGINS.labels("success" if isinstance(issued, Issued) else "second_factor_required").inc()
    return issued


async def change_password(
    state: AuthState, claims: AccessClaims, *, current: str, new: str, client: ClientInfo
) -> int:
    """Replace the caller's password, proven with the current one; every other session of the
    user ends, the user is told by mail. How many sessions ended."""
    async with transaction(state.sessionmaker, claims.org_id) as db:
        user = await identity_queries.user_by_id(db, claims.user_id)
    if user is None:
        raise Unauthorized()
    # Argon2 outside any transaction; an account without a password (external provider only)
    # has no current one to prove. One place in the hashing backlog for both hashes: a proven
    # password is not refused a moment later.
    with state.passwords.admit("verify"):
        if not await state.passwords.verify(user.password_hash, current):
            detach("password_change_failed", lambda: _audit_failed_change(state, user, client))
            raise WrongCurrentPassword()
        new_hash = await state.passwords.hash(new)
    async with transaction(state.sessionmaker, claims.org_id) as db:
        # The current password was checked against the version read before hashing; a change
        # or reset that committed since voids the check.
        if await queries.lock_credentials_version(db, user.id) != user.credentials_version:
            raise WrongCurrentPassword()
        await queries.set_password(db, user.id, new_hash)
        await retire_outstanding(db, user_id=user.id, purposes=(Purpose.PASSWORD_RESET, Purpose.MAGIC_LINK))
        revoked = await sessions.revoke_other_sessions(
            db, state, user.id, claims.session_id, reason="password_changed"
        )
        await _audit(db, user, "user.password_changed", client, {"sessions_revoked": len(revoked)})
    await emails.send_password_changed(state, to=user.email)
    return len(revoked)


async def _audit_failed_change(state: AuthState, user: UserRecord, client: ClientInfo) -> None:
    async with transaction(state.sessionmaker, user.org_id) as db:
        await _audit(db, user, "user.password_change_failed", client)


# --- emailed links -----------------------------------------------------------------------------


async def _mail_link(
    state: AuthState, email: str, mail: MailBudget, purpose: Purpose, send: emails.LinkMail
) -> None:
    """Issue a one-time token for the account of `email` and mail its link; nothing without an
    account or without a mail left in the budget."""
    user = await find_user_by_email(state, email)
    if user is None or not await mail.take():
        return
    async with transaction(state.sessionmaker, user.org_id) as db:
        token = await issue(db, state.settings, purpose=purpose, org_id=user.org_id, user_id=user.id)
        await send(state, to=user.email, token=token)


# --- magic links -------------------------------------------------------------------------------


async def request_magic_link(state: AuthState, *, email: str, mail: MailBudget) -> None:
    """Mail a sign-in link to the address if it has an account; nothing otherwise."""
    await _mail_link(state, email, mail, Purpose.MAGIC_LINK, emails.send_magic_link)


async def verify_magic_link(state: AuthState, *, token: str, client: ClientInfo) -> Issued | Pending:
    """Consume a magic link (single use), mark the email verified, and log the user in."""
    async with transaction(state.sessionmaker) as db:
        user = await _consume_for_user(db, Purpose.MAGIC_LINK, token)
        if not user.verified:
            # The pending password was chosen by whoever registered the address, which the
            # mailbox owner never confirmed: keeping it would let a squatter who registered the
            # victim's address log in once the victim signs in by email (account pre-hijacking).
            # The user can set a password with /password/forgot.
            await queries.set_password(db, user.id, None)
        user = await _mark_verified(db, user, client)
        # Whoever registered the address without verifying it loses the attempt: the mailbox
        # owner is signed in now.
        await signup_queries.drop_for_email(db, user.email)
        return await start_session(db, state, user, client, method="magic_link", audit_login=True)


# --- password reset ----------------------------------------------------------------------------


async def request_password_reset(state: AuthState, *, email: str, mail: MailBudget) -> None:
    """Mail a password-reset link to the address if it has an account; nothing otherwise."""
    await _mail_link(state, email, mail, Purpose.PASSWORD_RESET, emails.send_password_reset)


async def reset_password(state: AuthState, *, token: str, password: str, client: ClientInfo) -> None:
    """Set a new password from a reset link and revoke every session of the user."""
    # An invalid token costs no Argon2 time (it is checked again, and consumed, below).
    if not await is_live(state.sessionmaker, Purpose.PASSWORD_RESET, token):
        raise InvalidLink()
    password_hash = await state.passwords.hash(password)
    async with transaction(state.sessionmaker) as db:
        user = await _consume_for_user(db, Purpose.PASSWORD_RESET, token)
        # Takes the row lock a concurrent login checks its credentials version under.
        await queries.set_password(db, user.id, password_hash)
        # Receiving the reset email proves the address too.
        await _mark_verified(db, user, client)
        await retire_outstanding(db, user_id=user.id, purposes=(Purpose.PASSWORD_RESET, Purpose.MAGIC_LINK))
        revoked = await sessions.revoke_user_sessions(db, state, user.id, reason="password_reset")
        await _audit(db, user, "user.password_reset", client, {"sessions_revoked": len(revoked)})
