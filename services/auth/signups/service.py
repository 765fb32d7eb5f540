"""Sign-up attempts: registering an address that has no account, and verifying one attempt.

Every registration of an address without an account is its own attempt (its own token, password
hash, name and org name); a later attempt never replaces or retires an earlier one. Verification
creates the organization and its owner from exactly the attempt whose token it carries, and only
when the caller also presents that attempt's password: neither a squatter who registered first
nor one who registered in between can end up holding the account, and a person (or a link
scanner) who opens a link they never asked for activates nothing. Until then an attempt owns
nothing: no organization, no user, nothing that blocks an invitation to the address.
"""

from __future__ import annotations

import logging
from uuid import uuid4

from sqlalchemy.exc import IntegrityError

from services.auth import emails
from services.auth.accounts.service import InvalidLink, Issued, start_session
from services.auth.audit import audit_user_event
from services.auth.factors.challenges import Pending
from services.auth.identities import queries as identity_queries
from services.auth.identities.service import find_user_by_email, normalize_email
from services.auth.limits import MailBudget
from services.auth.metrics import REGISTRATIONS, UNVERIFIED_PURGED
from services.auth.passwords import HashTicket
from services.auth.signups import queries
from services.auth.state import AuthState, ClientInfo
from shared.db import transaction
from shared.opaque_tokens import new_token, token_hash

logger = logging.getLogger("blockbot.auth.signups")


async def register(
    state: AuthState,
    *,
    email: str,
    password: str,
    name: str,
    org_name: str,
    client: ClientInfo,
    mail: MailBudget,
    ticket: HashTicket | None = None,
) -> None:
    """Record a sign-up attempt and mail its link, or tell an existing account's owner.

    The attempt is recorded even when the address's mail budget is spent (only the mail is
    left out): the owner's attempt must exist for `verify-request` to mail its link later.
    This runs after the 202: its place in the hashing backlog is `ticket`, taken before the
    answer (`admit`); without one it is admitted regardless, since the caller has its 202."""
    address = normalize_email(email)
    # Hash first for every outcome: same cost whether or not the address is taken, and no
    # database connection is held while hashing.
    with ticket or state.passwords.admit("hash", shed=False):
        password_hash = await state.passwords.hash(password)
    existing = await find_user_by_email(state, address)
    if existing is not None:
        if await mail.take():
            await emails.send_account_exists(state, to=existing.email)
        REGISTRATIONS.labels("existing_account").inc()
        return
    settings = state.settings
    token, digest = new_token()
    async with transaction(state.sessionmaker) as db:
        await queries.insert(
            db,
            email=address,
            digest=digest,
            password_hash=password_hash,
            name=name,
            org_name=org_name,
            ttl_seconds=min(settings.email_verification_ttl_seconds, settings.unverified_signup_ttl_seconds),
        )
        if await mail.take():
            await emails.send_verification(state, to=address, name=name, token=token)
    REGISTRATIONS.labels("attempt").inc()


def admit(state: AuthState) -> HashTicket:
    """A place in the hashing backlog for one registration, taken before its 202 is sent (503
    `HashingBusy` when the sign-ups' share is full: before the address is looked at)."""
    return state.passwords.admit("hash")


async def request_verification(state: AuthState, *, email: str, mail: MailBudget) -> None:
    """Mail a new link for the newest pending attempt of an address; nothing otherwise.

    The new link is a copy of that attempt (same password; it lives no longer than the sign-up
    TTL from the first registration): the earlier link keeps working, nothing is replaced.
    """
    address = normalize_email(email)
    token, digest = new_token()
    async with transaction(state.sessionmaker) as db:
        name = await queries.copy_newest(
            db,
            email=address,
            digest=digest,
            link_ttl=state.settings.email_verification_ttl_seconds,
            signup_ttl=state.settings.unverified_signup_ttl_seconds,
        )
        if name is not None and await mail.take():
            await emails.send_verification(state, to=address, name=name, token=token)


async def verify_email(
    state: AuthState, *, token: str, password: str, client: ClientInfo
) -> Issued | Pending:
    """Activate the attempt this token belongs to, if `password` is the one chosen in it.

    Creates the organization and its owner (email verified), drops the address's other
    attempts and logs the owner in. A wrong or missing password leaves the attempt intact.
    """
    digest = token_hash(token)
    attempt = None
    if digest is not None:
        async with transaction(state.sessionmaker) as db:
            attempt = await queries.find_live(db, digest)
    # Unknown tokens cost no Argon2 time: the token (256 random bits) is the secret here.
    if attempt is None or not await state.passwords.verify(attempt.password_hash, password):
        raise InvalidLink()
    org_id, user_id = uuid4(), uuid4()
    try:
        async with transaction(state.sessionmaker, org_id) as db:
            if not await queries.claim(db, attempt.id):
                raise InvalidLink()
            await queries.drop_for_email(db, attempt.email)
            await queries.create_org_with_owner(db, org_id=org_id, user_id=user_id, attempt=attempt)
            for action in ("user.registered", "user.email_verified"):
                await audit_user_event(db, org_id=org_id, user_id=user_id, action=action, client=client)
            user = await identity_queries.user_by_id(db, user_id)
            assert user is not None
            return await start_session(db, state, user, client, method="email_verification")
    except IntegrityError:
        # The address got an account meanwhile (an accepted invitation): its attempts are moot.
        async with transaction(state.sessionmaker) as db:
            await queries.drop_for_email(db, attempt.email)
        raise InvalidLink() from None


async def purge_expired_attempts(state: AuthState, *, batch: int = 500) -> int:
    """Delete sign-up attempts whose link has expired."""
    async with transaction(state.sessionmaker) as db:
        purged = await queries.purge_expired(db, batch)
    if purged:
        UNVERIFIED_PURGED.inc(purged)
        logger.info("purged expired sign-up attempts", extra={"count": purged})
    return purged
