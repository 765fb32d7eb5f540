"""Accepting an invitation: the invitee joins the inviting org with the invited role."""

from __future__ import annotations

from uuid import uuid4

from sqlalchemy.exc import IntegrityError

from services.auth.accounts.service import InvalidLink, Issued, start_session
from services.auth.factors.challenges import Pending
from services.auth.identities import queries as identity_queries
from services.auth.identities.service import normalize_email
from services.auth.invitations import queries
from services.auth.one_time_tokens.service import Purpose, consume, is_live
from services.auth.signups import queries as signup_queries
from services.auth.state import AuthState, ClientInfo
from shared import audit as shared_audit
from shared.db import transaction
from shared.errors import Conflict
from shared.roles import may_invite

ACCOUNT_EXISTS = "An account already exists for this email address; sign in instead."


async def accept_invitation(
    state: AuthState, *, token: str, name: str, password: str, client: ClientInfo
) -> Issued | Pending:
    """Consume the invitation token, create the verified member and log them in."""
    # An invalid token costs no Argon2 time (it is checked again, and consumed, below).
    if not await is_live(state.sessionmaker, Purpose.INVITATION, token):
        raise InvalidLink()
    password_hash = await state.passwords.hash(password)
    try:
        async with transaction(state.sessionmaker) as db:
            consumed = await consume(db, Purpose.INVITATION, token)
            if consumed is None or consumed.invitation_id is None:
                raise InvalidLink()
            invitation = await queries.lock_pending(db, consumed.invitation_id)
            if invitation is None:
                raise InvalidLink()
            # The invitation is only as good as its sender's rights today: removed or demoted
            # since, the sender can no longer bring anyone in. (A plain read, no lock: the api
            # locks the sender's row before the invitation's token, the reverse of this order.)
            inviter_role = (
                None
                if invitation.invited_by is None
                else await identity_queries.enabled_role(db, invitation.invited_by)
            )
            if not may_invite(inviter_role, invitation.role):
                raise InvalidLink()
            email = normalize_email(invitation.email)
            if await identity_queries.email_taken(db, email):
                raise Conflict(ACCOUNT_EXISTS)
            # Pending sign-up attempts of the address never block an invitation: whoever made
            # them did not prove the mailbox; the invitee just did.
            await signup_queries.drop_for_email(db, email)
            user_id = uuid4()
            await queries.insert_member(
                db,
                user_id=user_id,
                org_id=consumed.org_id,
                email=email,
                name=name,
                role=invitation.role,
                password_hash=password_hash,
            )
            await queries.mark_accepted(db, invitation.id)
            await shared_audit.record(
                db,
                org_id=consumed.org_id,
                action="invitation.accepted",
                actor_user_id=user_id,
                target_type="invitation",
                target_id=invitation.id,
                details={
                    "role": str(invitation.role),
                    "invited_by": str(invitation.invited_by) if invitation.invited_by else None,
                },
                ip=client.ip,
            )
            user = await identity_queries.user_by_id(db, user_id)
            assert user is not None
            return await start_session(db, state, user, client, method="invitation")
    except IntegrityError:
        # The same address signed up or accepted concurrently.
        raise Conflict(ACCOUNT_EXISTS) from None
