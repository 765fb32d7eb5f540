"""Signing in with external providers, and the identities linked to accounts.

The rules that make linking safe by construction:

* An attempt (`state`, PKCE verifier, nonce, what it is for) lives in Redis for
  AUTH_PROVIDER_ATTEMPT_TTL_SECONDS and is taken exactly once (GETDEL); it is bound to the browser
  that started it by a short-lived cookie whose hash it holds, so a callback URL carried to
  another browser (login CSRF) finds no attempt it may use.
* An external identity is linked to an account only by that account's signed-in user, from a
  session authenticated within REAUTHENTICATION_MAX_AGE_SECONDS. An email that matches never links:
  a first sign-in whose verified address already has an account gets no session and no link,
  and is told to sign in the usual way and link from the account page. An address the provider
  does not vouch for never creates or links anything.
* Unlinking keeps at least one way to sign in (a password, or another identity).

Sessions are opened through `accounts.service.start_session`, the seam every first factor
uses, so whatever the account requires after a first factor applies here too.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.accounts.service import InvalidLink, Issued, start_session
from services.auth.audit import audit_user_event
from services.auth.factors.challenges import Pending
from services.auth.factors.level import trusted_external_mfa
from services.auth.identities import queries as identity_queries
from services.auth.identities.queries import UserRecord
from services.auth.identities.service import find_user_by_email
from services.auth.invitations import queries as invitation_queries
from services.auth.metrics import PROVIDER_FAILURES, PROVIDER_SIGN_INS
from services.auth.one_time_tokens.service import Purpose, consume, is_live
from services.auth.prefix import AUTH_PREFIX
from services.auth.providers import queries
from services.auth.providers.protocol import Profile, Provider, ProviderFailure, failure_of, multi_factor
from services.auth.providers.queries import ExternalIdentity
from services.auth.signups import queries as signup_queries
from services.auth.state import AuthState, ClientInfo
from shared import audit as shared_audit
from shared.access_tokens import AccessClaims
from shared.db import transaction
from shared.errors import (
    AppError,
    LastSignInMethod,
    LinkedIdentityNotFound,
    ReauthenticationRequired,
)
from shared.names import refuse_control_characters
from shared.redis import redis_key
from shared.redis_errors import redis_or_503
from shared.roles import Role, may_invite

logger = logging.getLogger("blockbot.auth.providers")

METHOD = "external_provider"


class Intent(StrEnum):
    SIGN_IN = "sign_in"
    LINK = "link"


@dataclass(frozen=True)
class Attempt:
    """A started sign-in, as kept in Redis until its callback (or its expiry)."""

    provider: str
    intent: str
    binding: str  # SHA-256 (hex) of the browser cookie's value
    code_verifier: str
    nonce: str | None
    redirect_uri: str
    user_id: str | None = None
    org_id: str | None = None
    session_id: str | None = None
    invitation_token: str | None = None


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the cookie value that binds the attempt to it."""

    authorization_url: str
    browser_binding: str


@dataclass(frozen=True)
class Outcome:
    """What a callback came to: a new session (sign-in), a link, or a failure reason."""

    intent: Intent
    provider: str
    issued: Issued | None = None
    # The account has a second factor: no session yet, a challenge to finish on the web app.
    pending: Pending | None = None
    linked: bool = False
    failure: str | None = None


def callback_uri(state: AuthState, provider: Provider) -> str:
    """The exact redirect URI registered with the provider."""
    base = str(state.settings.app_base_url).rstrip("/")
    return f"{base}{AUTH_PREFIX}/providers/{provider.key}/callback"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _attempt_key(state: AuthState, state_param: str) -> str:
    return redis_key(state.settings, "auth", "provider-attempt", _digest(state_param))


def _fail(provider: str, reason: str) -> ProviderFailure:
    PROVIDER_FAILURES.labels(provider, reason).inc()
    return ProviderFailure(reason, reason)


# --- start -------------------------------------------------------------------------------------


async def start(
    state: AuthState,
    provider: Provider,
    *,
    intent: Intent = Intent.SIGN_IN,
    claims: AccessClaims | None = None,
    invitation_token: str | None = None,
) -> Started:
    """Begin an attempt: keep its secrets in Redis, and say where the browser goes.

    Raises ProviderFailure when the provider cannot be reached (discovery)."""
    state_param = secrets.token_urlsafe(32)
    binding = secrets.token_urlsafe(32)
    redirect_uri = callback_uri(state, provider)
    try:
        authorization = await provider.authorization(redirect_uri, state_param)
    except Exception as error:
        failure = failure_of(error)
        if failure is None:
            raise
        logger.warning("provider start failed", extra={"provider": provider.key, "error": str(failure)})
        raise _fail(provider.key, failure.reason) from None
    attempt = Attempt(
        provider=provider.key,
        intent=str(intent),
        binding=_digest(binding),
        code_verifier=authorization.code_verifier,
        nonce=authorization.nonce,
        redirect_uri=redirect_uri,
        user_id=str(claims.user_id) if claims else None,
        org_id=str(claims.org_id) if claims else None,
        session_id=str(claims.session_id) if claims else None,
        invitation_token=invitation_token,
    )
    with redis_or_503():
        await state.redis.set(
            _attempt_key(state, state_param),
            orjson.dumps(asdict(attempt)),
            ex=state.settings.auth_provider_attempt_ttl_seconds,
        )
    return Started(authorization.url, binding)


async def start_link(state: AuthState, provider: Provider, claims: AccessClaims) -> Started:
    """Begin linking `provider` to the caller's account: only from a recent sign-in."""
    async with transaction(state.sessionmaker, claims.org_id) as db:
        signed_in = await queries.session_signed_in_at(db, claims.session_id, claims.user_id)
        age = None if signed_in is None else await queries.seconds_since(db, signed_in)
    if age is None or age > state.settings.reauthentication_max_age_seconds:
        raise ReauthenticationRequired()
    return await start(state, provider, intent=Intent.LINK, claims=claims)


async def start_invitation(state: AuthState, provider: Provider, invitation_token: str) -> Started:
    """Begin accepting an invitation with a provider (the address must be the invited one)."""
    if not await is_live(state.sessionmaker, Purpose.INVITATION, invitation_token):
        raise InvalidLink()
    return await start(state, provider, invitation_token=invitation_token)


# --- callback ----------------------------------------------------------------------------------


async def _take_attempt(state: AuthState, state_param: str) -> Attempt | None:
    """The attempt of `state`, removed in the same command: a second callback finds nothing."""
    with redis_or_503():
        raw = await state.redis.getdel(_attempt_key(state, state_param))
    if raw is None:
        return None
    try:
        return Attempt(**orjson.loads(raw))
    except (orjson.JSONDecodeError, TypeError):
        return None


async def callback(
    state: AuthState,
    provider: Provider,
    *,
    params: dict[str, str],
    browser_binding: str | None,
    client: ClientInfo,
) -> Outcome:
    """Finish an attempt from the provider's redirect; never raises for what the provider or the
    browser sent (those are `Outcome.failure`), only for our own dependencies (503)."""
    key = provider.key
    state_param = params.get("state")
    if not state_param:
        return Outcome(Intent.SIGN_IN, key, failure=_fail(key, "state_missing").reason)
    attempt = await _take_attempt(state, state_param)
    if attempt is None:
        # Unknown, used or expired: all the same to the person (start again).
        return Outcome(Intent.SIGN_IN, key, failure=_fail(key, "expired").reason)
    intent = Intent(attempt.intent)
    if (
        attempt.provider != key
        or browser_binding is None
        or not secrets.compare_digest(_digest(browser_binding), attempt.binding)
    ):
        return Outcome(intent, key, failure=_fail(key, "state_mismatch").reason)
    try:
        profile = await _profile(provider, attempt, params)
        if intent is Intent.LINK:
            await _link(state, provider, attempt, profile, client)
            PROVIDER_SIGN_INS.labels(key, "linked").inc()
            return Outcome(intent, key, linked=True)
        issued = await _sign_in(state, provider, attempt, profile, client)
        if isinstance(issued, Pending):
            return Outcome(intent, key, pending=issued)
        return Outcome(intent, key, issued=issued)
    except ProviderFailure as failure:
        logger.info("provider sign-in refused", extra={"provider": key, "reason": failure.reason})
        return Outcome(intent, key, failure=failure.reason)


async def _profile(provider: Provider, attempt: Attempt, params: dict[str, str]) -> Profile:
    key = provider.key
    refused = params.get("error")
    if refused:
        raise _fail(key, "denied" if refused == "access_denied" else "provider_error")
    code = params.get("code")
    if not code:
        raise _fail(key, "invalid_response")
    try:
        await provider.check_issuer_parameter(params.get("iss"))
        return await provider.profile(
            code=code,
            code_verifier=attempt.code_verifier,
            redirect_uri=attempt.redirect_uri,
            nonce=attempt.nonce,
        )
    except ProviderFailure as refusal:
        raise _fail(key, refusal.reason) from None
    except Exception as error:
        failure = failure_of(error)
        if failure is None:
            raise
        logger.warning("provider exchange failed", extra={"provider": key, "error": str(failure)})
        raise _fail(key, failure.reason) from None


def _provider_mfa(provider: Provider, profile: Profile) -> bool:
    """Whether the provider's own second factor counts (only where the operator opted in)."""
    return provider.trust_mfa and multi_factor(profile.amr)


async def _open_session(
    db: Any, state: AuthState, provider: Provider, profile: Profile, user: UserRecord, client: ClientInfo
) -> Issued | Pending:
    # The provider's own second factor, where the operator trusts it, counts as this one's.
    level = trusted_external_mfa(METHOD) if _provider_mfa(provider, profile) else None
    issued = await start_session(db, state, user, client, method=METHOD, level=level)
    if isinstance(issued, Pending):
        return issued  # audited as a challenge; the login is audited when it is finished
    await audit_user_event(
        db,
        org_id=user.org_id,
        user_id=user.id,
        action="auth.login",
        client=client,
        details={
            "method": METHOD,
            "provider": provider.key,
            "provider_mfa": _provider_mfa(provider, profile),
        },
    )
    return issued


async def _sign_in(
    state: AuthState, provider: Provider, attempt: Attempt, profile: Profile, client: ClientInfo
) -> Issued | Pending:
    key = provider.key
    async with transaction(state.sessionmaker) as db:
        identity = await queries.by_subject(db, key, profile.subject)
    if identity is not None:
        if attempt.invitation_token:
            # The identity already belongs to an account: an invitation cannot add it to another.
            raise _fail(key, "account_exists")
        return await _sign_in_known(state, provider, identity, profile, client)
    email = profile.verified_email
    if email is None:
        raise _fail(key, "email_unverified")
    existing = await find_user_by_email(state, email)
    if existing is not None:
        await _record_refusal(state, provider, existing, client)
        raise _fail(key, "account_exists")
    if attempt.invitation_token:
        return await _accept_invitation(state, provider, attempt.invitation_token, profile, email, client)
    return await _sign_up(state, provider, profile, email, client)


async def _sign_in_known(
    state: AuthState, provider: Provider, identity: ExternalIdentity, profile: Profile, client: ClientInfo
) -> Issued | Pending:
    async with transaction(state.sessionmaker, identity.org_id) as db:
        user = await identity_queries.user_by_id(db, identity.user_id)
        if user is None:
            raise _fail(provider.key, "account_exists")
        try:
            issued = await _open_session(db, state, provider, profile, user, client)
        except AppError:
            # Disabled by an operator: the same refusal as any other, nothing written.
            raise _fail(provider.key, "sign_in_refused") from None
        await queries.touch(db, identity.id, profile.email)
    PROVIDER_SIGN_INS.labels(provider.key, "signed_in").inc()
    return issued


async def _record_refusal(state: AuthState, provider: Provider, user: UserRecord, client: ClientInfo) -> None:
    """The account's own audit log shows that someone came with its address from a provider."""
    async with transaction(state.sessionmaker, user.org_id) as db:
        await shared_audit.record(
            db,
            org_id=user.org_id,
            action="auth.provider_sign_in_refused",
            actor_user_id=None,
            target_type="user",
            target_id=user.id,
            details={"provider": provider.key, "reason": "account_exists"},
            ip=client.ip,
        )


def _display_name(profile: Profile, email: str) -> str:
    """The provider's name for the person when it is one line of visible text, else the
    address's local part."""
    candidate = (profile.name or "").strip()[:200]
    try:
        if candidate:
            return refuse_control_characters(candidate)
    except ValueError:
        pass
    return email.split("@", 1)[0][:200] or "User"


async def _sign_up(
    state: AuthState, provider: Provider, profile: Profile, email: str, client: ClientInfo
) -> Issued | Pending:
    """A new organization and its owner, as a verified sign-up creates them."""
    name = _display_name(profile, email)
    org_id, user_id = uuid4(), uuid4()
    try:
        async with transaction(state.sessionmaker, org_id) as db:
            await queries.create_org_with_owner(
                db,
                org_id=org_id,
                user_id=user_id,
                org_name=f"{name}'s organization"[:200],
                email=email,
                name=name,
            )
            await signup_queries.drop_for_email(db, email)
            await queries.insert(
                db,
                org_id=org_id,
                user_id=user_id,
                provider=provider.key,
                subject=profile.subject,
                email=email,
            )
            for action in ("user.registered", "user.email_verified"):
                await audit_user_event(
                    db,
                    org_id=org_id,
                    user_id=user_id,
                    action=action,
                    client=client,
                    details={"provider": provider.key},
                )
            await audit_user_event(
                db,
                org_id=org_id,
                user_id=user_id,
                action="identity.linked",
                client=client,
                details={"provider": provider.key},
            )
            user = await identity_queries.user_by_id(db, user_id)
            assert user is not None
            issued = await _open_session(db, state, provider, profile, user, client)
    except IntegrityError:
        # The address got an account, or the identity a user, meanwhile.
        raise _fail(provider.key, "account_exists") from None
    PROVIDER_SIGN_INS.labels(provider.key, "signed_up").inc()
    return issued


async def _accept_invitation(
    state: AuthState, provider: Provider, token: str, profile: Profile, email: str, client: ClientInfo
) -> Issued | Pending:
    """Join the inviting org, when the provider's verified address is the invited one."""
    key = provider.key
    user_id = uuid4()
    try:
        async with transaction(state.sessionmaker) as db:
            consumed = await consume(db, Purpose.INVITATION, token)
            if consumed is None or consumed.invitation_id is None:
                raise _fail(key, "invitation_invalid")
            invitation = await invitation_queries.lock_pending(db, consumed.invitation_id)
            if invitation is None:
                raise _fail(key, "invitation_invalid")
            inviter_role = (
                None
                if invitation.invited_by is None
                else await identity_queries.enabled_role(db, invitation.invited_by)
            )
            if not may_invite(inviter_role, invitation.role):
                raise _fail(key, "invitation_invalid")
            if invitation.email.strip().lower() != email:
                # Rolled back with the rest: the invitee may still accept it with the right account.
                raise _fail(key, "invitation_email_mismatch")
            await signup_queries.drop_for_email(db, email)
            await queries.insert_user(
                db,
                user_id=user_id,
                org_id=consumed.org_id,
                email=email,
                name=_display_name(profile, email),
                role=Role(invitation.role),
            )
            await invitation_queries.mark_accepted(db, invitation.id)
            await queries.insert(
                db,
                org_id=consumed.org_id,
                user_id=user_id,
                provider=key,
                subject=profile.subject,
                email=email,
            )
            await shared_audit.record(
                db,
                org_id=consumed.org_id,
                action="invitation.accepted",
                actor_user_id=user_id,
                target_type="invitation",
                target_id=invitation.id,
                details={"role": str(invitation.role), "provider": key},
                ip=client.ip,
            )
            await audit_user_event(
                db,
                org_id=consumed.org_id,
                user_id=user_id,
                action="identity.linked",
                client=client,
                details={"provider": key},
            )
            user = await identity_queries.user_by_id(db, user_id)
            assert user is not None
            issued = await _open_session(db, state, provider, profile, user, client)
    except IntegrityError:
        raise _fail(key, "account_exists") from None
    PROVIDER_SIGN_INS.labels(key, "invitation_accepted").inc()
    return issued


async def _link(
    state: AuthState, provider: Provider, attempt: Attempt, profile: Profile, client: ClientInfo
) -> None:
    """Link the identity to the account that started the attempt, if its session still lives."""
    key = provider.key
    assert attempt.user_id and attempt.org_id and attempt.session_id
    user_id, org_id = UUID(attempt.user_id), UUID(attempt.org_id)
    try:
        async with transaction(state.sessionmaker, org_id) as db:
            if await queries.session_signed_in_at(db, UUID(attempt.session_id), user_id) is None:
                raise _fail(key, "session_ended")
            existing = await queries.by_subject(db, key, profile.subject)
            if existing is not None:
                if existing.user_id != user_id:
                    raise _fail(key, "identity_linked_elsewhere")
                return
            await queries.insert(
                db, org_id=org_id, user_id=user_id, provider=key, subject=profile.subject, email=profile.email
            )
            await audit_user_event(
                db,
                org_id=org_id,
                user_id=user_id,
                action="identity.linked",
                client=client,
                details={"provider": key},
            )
    except IntegrityError:
        # The account has an identity of this provider already, or the subject was linked
        # elsewhere meanwhile.
        raise _fail(key, "provider_already_linked") from None


# --- identities --------------------------------------------------------------------------------


async def list_identities(db: AsyncSession, claims: AccessClaims) -> list[ExternalIdentity]:
    """The caller's linked identities."""
    return await queries.of_user(db, claims.user_id)


async def unlink(db: AsyncSession, claims: AccessClaims, identity_id: UUID, client: ClientInfo) -> None:
    """Unlink one of the caller's identities, unless it is their last way to sign in."""
    # The user row's lock makes concurrent unlinks (and password removals) take turns.
    other_sign_in = await queries.lock_user_has_other_sign_in(db, claims.user_id)
    identities = await queries.of_user(db, claims.user_id)
    target = next((i for i in identities if i.id == identity_id), None)
    if other_sign_in is None or target is None:
        raise LinkedIdentityNotFound()
    if not other_sign_in and len(identities) == 1:
        raise LastSignInMethod()
    await queries.delete_of_user(db, identity_id, claims.user_id)
    await audit_user_event(
        db,
        org_id=claims.org_id,
        user_id=claims.user_id,
        action="identity.unlinked",
        client=client,
        details={"provider": target.provider},
    )
