"""Membership rules.

- Names are changed by their owner only; roles by owners and admins; a member can change no
  role, their own included.
- Only an owner can grant or revoke `owner`, or remove an owner.
- The last owner can never be demoted or removed. Checked under a lock on the org row
  (`lock_org`) so two concurrent demotions cannot both pass.
- A removed member's sessions are revoked with them, and their access tokens refused at once.
- Invitations and API keys never outlive their creator's rights: removing or demoting a member
  revokes the pending invitations they could no longer send and, below admin, the API keys
  they created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from uuid import UUID

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import audit
from services.api.api_keys.service import revoke_beyond_creator_rights
from services.api.invitations import queries as invitation_queries
from services.api.members import queries
from services.api.members.queries import UserRow
from services.api.principal import Principal
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized
from shared.roles import Role, may_invite
from shared.sessions.revocation import revoke_user_sessions
from shared.settings import Settings


class MemberNotFound(NotFound):
    default_detail = "No such user."


class NotOwnName(Forbidden):
    default_detail = "Only the user themselves can change their name."


class CannotPromoteAboveSelf(Forbidden):
    """Granting, revoking or inviting `owner`, or removing an owner, takes an owner."""

    default_detail = "Only an owner can grant or revoke the owner role."


class LastOwner(Conflict):
    default_detail = "The organization's last owner cannot be demoted or removed."


async def lock_org(session: AsyncSession, me: Principal) -> Principal:
    """Serialize membership changes of one org (the last-owner rule must see a stable count).

    Returns the caller re-read under the lock: a concurrent change may have demoted them.
    """
    await queries.lock_org(session, me.org_id)
    role = await queries.user_role(session, me.user_id)
    if role is None:
        raise Unauthorized("The user of this access token no longer exists.")
    return me if role == me.role else replace(me, role=role)


async def list_members(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[Sequence[UserRow], str | None]:
    """One page of members, oldest first, and the next page's cursor."""
    return await queries.MEMBERS.page(session, limit=limit, cursor=cursor)


async def get_member(session: AsyncSession, user_id: UUID, *, lock: bool = False) -> UserRow:
    """One member; another org's user is invisible (RLS): the same `MemberNotFound`."""
    row = await queries.MEMBERS.get(session, user_id, lock=lock)
    if row is None:
        raise MemberNotFound()
    return row


async def _refuse_last_owner(session: AsyncSession, target: UserRow) -> None:
    if target.role == Role.OWNER and await queries.owner_count(session) <= 1:
        raise LastOwner()


async def _revoke_invitations_beyond(
    session: AsyncSession, me: Principal, user_id: UUID, role: Role | None
) -> None:
    """Invitations never outlive their sender's rights: revoke those `role` could not send now
    (None: the sender is being removed, who may invite nobody)."""
    beyond = [r.value for r in Role if not may_invite(role, r)]
    if not beyond:
        return
    revoked = await invitation_queries.revoke_pending_sent_by(session, user_id, beyond)
    reason = "inviter_removed" if role is None else "inviter_role_changed"
    await audit.record_invitations_revoked(session, me, revoked, reason)


async def change_member(
    session: AsyncSession, me: Principal, user_id: UUID, *, name: str | None, role: Role | None
) -> UserRow:
    """Rename (self only) and/or change the role of a member, audited; no change is no write."""
    me = await lock_org(session, me)
    target = await get_member(session, user_id, lock=True)
    name_change = name is not None and name != target.name
    role_change = role is not None and role != target.role
    if name_change and target.id != me.user_id:
        raise NotOwnName()
    if role_change:
        me.require_manager("Only an owner or an admin can change roles.")
        if Role.OWNER in (target.role, role) and me.role != Role.OWNER:
            raise CannotPromoteAboveSelf()
        await _refuse_last_owner(session, target)
    if not name_change and not role_change:
        return target
    row = await queries.update_user(
        session,
        target.id,
        name=name if name is not None and name_change else target.name,
        role=role if role is not None and role_change else target.role,
    )
    if role_change:
        await audit.record(
            session,
            me,
            "user.role_changed",
            target_type="user",
            target_id=target.id,
            details={"from": target.role, "to": role},
        )
        assert role is not None
        await _revoke_invitations_beyond(session, me, target.id, Role(role))
        await revoke_beyond_creator_rights(session, me, target.id, Role(role))
    if name_change:
        await audit.record(
            session,
            me,
            "user.updated",
            target_type="user",
            target_id=target.id,
            details={"fields": ["name"]},
        )
    return row


async def remove_member(
    session: AsyncSession, me: Principal, user_id: UUID, *, redis: ArqRedis, settings: Settings
) -> None:
    """Delete a member and revoke their sessions, audited."""
    me = await lock_org(session, me)
    target = await get_member(session, user_id, lock=True)
    me.require_manager("Only an owner or an admin can remove members.")
    if target.role == Role.OWNER:
        if me.role != Role.OWNER:
            raise CannotPromoteAboveSelf("Only an owner can remove an owner.")
        await _refuse_last_owner(session, target)
    # Access tokens of those sessions die at once; even without Redis they are refused,
    # because every request loads the user row and this one is gone.
    sids = await revoke_user_sessions(
        session, redis, settings, target.id, reason="user_removed", redis_required=False
    )
    await _revoke_invitations_beyond(session, me, target.id, None)
    await revoke_beyond_creator_rights(session, me, target.id, None)
    await queries.delete_user(session, target.id)
    await audit.record(
        session,
        me,
        "user.removed",
        target_type="user",
        target_id=target.id,
        details={"email": target.email, "role": target.role, "sessions_revoked": len(sids)},
    )
