"""Accepting an invitation: the invitee joins the inviting org with the invited role."""

from __future__ import annotations

from uuid import uuid4

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.auth.accounts import InvalidLink, Issued, start_session
from services.auth.identities import load_user, normalize_email
from services.auth.one_time_tokens import Purpose, consume, is_live
from services.auth.signups import queries as signup_queries
from services.auth.state import AuthState, ClientInfo
from shared import audit
from shared.db import transaction
from shared.errors import Conflict

# The roles each role may invite (the api enforces the same when the invitation is created).
MAY_INVITE = {"owner": ("owner", "admin", "member"), "admin": ("admin", "member")}
ACCOUNT_EXISTS = "An account already exists for this email address; sign in instead."


async def accept_invitation(
    state: AuthState, *, token: str, name: str, password: str, client: ClientInfo
) -> Issued:
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
            invitation = (
                await db.execute(
                    text(
                        "SELECT id, email, role, invited_by FROM invitations WHERE id = :id"
                        " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
                        " FOR UPDATE"
                    ),
                    {"id": consumed.invitation_id},
                )
            ).one_or_none()
            if invitation is None:
                raise InvalidLink()
            # The invitation is only as good as its sender's rights today: removed or demoted
            # since, the sender can no longer bring anyone in. (A plain read, no lock: the api
            # locks the sender's row before the invitation's token, the reverse of this order.)
            inviter_role = (
                await db.execute(
                    text("SELECT role FROM users WHERE id = :id AND disabled_at IS NULL"),
                    {"id": invitation.invited_by},
                )
            ).scalar_one_or_none()
            if inviter_role not in MAY_INVITE or invitation.role not in MAY_INVITE[inviter_role]:
                raise InvalidLink()
            email = normalize_email(invitation.email)
            taken = (
                await db.execute(text("SELECT 1 FROM users WHERE lower(email) = :email"), {"email": email})
            ).first()
            if taken is not None:
                raise Conflict(ACCOUNT_EXISTS)
            # Pending sign-up attempts of the address never block an invitation: whoever made
            # them did not prove the mailbox; the invitee just did.
            await signup_queries.drop_for_email(db, email)
            user_id = uuid4()
            await db.execute(
                text(
                    "INSERT INTO users (id, org_id, email, name, role, password_hash,"
                    " email_verified_at) VALUES (:id, :org, :email, :name, :role, :hash, now())"
                ),
                {
                    "id": user_id,
                    "org": consumed.org_id,
                    "email": email,
                    "name": name,
                    "role": invitation.role,
                    "hash": password_hash,
                },
            )
            await db.execute(
                text("UPDATE invitations SET accepted_at = now() WHERE id = :id"),
                {"id": invitation.id},
            )
            await audit.record(
                db,
                org_id=consumed.org_id,
                action="invitation.accepted",
                actor_user_id=user_id,
                target_type="invitation",
                target_id=invitation.id,
                details={
                    "role": invitation.role,
                    "invited_by": str(invitation.invited_by) if invitation.invited_by else None,
                },
                ip=client.ip,
            )
            user = await load_user(db, user_id)
            assert user is not None
            return await start_session(db, state, user, client, method="invitation")
    except IntegrityError:
        # The same address signed up or accepted concurrently.
        raise Conflict(ACCOUNT_EXISTS) from None
