"""Invitation rules.

- Only an owner or an admin invites (their role as of the org lock); only an owner invites an
  owner.
- A 409 when the address is already a member of THIS org or has a pending invitation; an
  address of another org is invisible here (RLS) and is invited like any other, so the api
  never reveals other tenants' members. An expired, never-answered invitation no longer blocks.
- The link carries a one-time token (`shared/opaque_tokens.py`) in its fragment; only its
  SHA-256 is stored (`one_time_tokens`, purpose 'invitation'), which the auth service consumes
  when the invitation is accepted.
- The email is enqueued before the commit: if Redis refuses, the whole invitation is rolled
  back (503), never half made.
- Revoking spends the link's token first; an accepted invitation cannot be revoked.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import audit
from services.api.invitations import queries
from services.api.invitations.queries import InvitationRow
from services.api.invitations.schemas import InvitationStatus
from services.api.members.service import lock_org
from services.api.principal import Principal
from shared.email_queue import InvitationProps, enqueue_email
from shared.errors import Conflict, Forbidden, NotFound
from shared.opaque_tokens import new_token
from shared.ratelimit import RateLimiter, Window, hash_identifier, raise_if_limited
from shared.roles import Role, may_invite
from shared.settings import Settings


class AlreadyMember(Conflict):
    default_detail = "This address is already a member of the organization."


class AlreadyInvited(Conflict):
    default_detail = "A pending invitation for this address already exists."


class OwnerInviteNeedsOwner(Forbidden):
    default_detail = "Only an owner can invite an owner."


class InvitationNotFound(NotFound):
    default_detail = "No such invitation."


class AlreadyAccepted(Conflict):
    default_detail = "The invitation has already been accepted."


def status(row: InvitationRow) -> InvitationStatus:
    """Accepted and revoked are final; otherwise pending until it expires."""
    if row.accepted_at is not None:
        return "accepted"
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if row.expired else "pending"


async def _within_mail_caps(limiter: RateLimiter, settings: Settings, me: Principal, email: str) -> None:
    """Invitation mails go out from the platform's address: cap them per org and per recipient
    per day, so invite/revoke loops cannot turn the platform into a spam or phishing relay."""
    day = 24 * 3600
    decision = await limiter.check_fail_open(
        [
            Window("invite_org", str(me.org_id), settings.invitations_per_org_per_day, day),
            Window("invite_to", hash_identifier(email), settings.invitations_per_recipient_per_day, day),
        ]
    )
    if decision is not None:
        raise_if_limited(decision)


async def invite(
    session: AsyncSession,
    me: Principal,
    *,
    email: str,
    role: Role,
    redis: ArqRedis,
    settings: Settings,
    limiter: RateLimiter | None = None,
) -> InvitationRow:
    """Create a pending invitation, audited, and queue its email (within the daily mail caps)."""
    me.require_manager()
    me = await lock_org(session, me)  # serialized with role changes: the role as of now
    me.require_manager()
    if not may_invite(me.role, role):  # a manager by now: only `owner` can be beyond them
        raise OwnerInviteNeedsOwner()
    if await queries.member_exists(session, email):
        raise AlreadyMember()
    superseded = await queries.revoke_expired_pending(session, email)
    await audit.record_invitations_revoked(session, me, superseded, "expired_superseded")
    if limiter is not None:
        await _within_mail_caps(limiter, settings, me, email)
    ttl = settings.invitation_ttl_seconds
    row = await queries.insert_pending(
        session, org_id=me.org_id, email=email, role=role, invited_by=me.user_id, ttl_seconds=ttl
    )
    if row is None:
        raise AlreadyInvited()
    token, digest = new_token()
    await queries.insert_token(
        session, org_id=me.org_id, invitation_id=row.id, digest=digest, expires_at=row.expires_at
    )
    await audit.record(
        session,
        me,
        "invitation.created",
        target_type="invitation",
        target_id=row.id,
        details={"email": email, "role": role},
    )
    base = str(settings.app_base_url).rstrip("/")
    await enqueue_email(
        redis,
        settings,
        to=email,
        props=InvitationProps(
            link=f"{base}/auth/accept-invitation#token={token}",
            expires_in_seconds=ttl,
            org_name=me.org_name,
            inviter_name=me.name,
            role=role,
        ),
    )
    return row


async def list_invitations(
    session: AsyncSession, me: Principal, *, limit: int, cursor: str | None
) -> tuple[Sequence[InvitationRow], str | None]:
    """One page of the org's invitations, newest first (owner/admin), and the next cursor."""
    me.require_manager()
    return await queries.INVITATIONS.page(session, limit=limit, cursor=cursor)


async def revoke(session: AsyncSession, me: Principal, invitation_id: UUID) -> None:
    """Revoke a pending (or expired) invitation, audited; revoking twice is a no-op."""
    # Locks in the order the auth service's acceptance takes them (token rows, then the
    # invitation), after the org lock that serializes role changes: no lock cycle. The token is
    # spent first; any refusal below rolls the whole transaction back.
    me = await lock_org(session, me)
    await queries.spend_tokens(session, invitation_id)
    row = await queries.INVITATIONS.get(session, invitation_id, lock=True)
    if row is None:
        raise InvitationNotFound()
    me.require_manager()
    if row.accepted_at is not None:
        raise AlreadyAccepted()
    if row.revoked_at is None:
        await queries.mark_revoked(session, row.id)
        await audit.record(
            session,
            me,
            "invitation.revoked",
            target_type="invitation",
            target_id=row.id,
            details={"email": row.email, "role": row.role},
        )
