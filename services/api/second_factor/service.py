"""The org's second-factor policy: only an owner sets it, and turns it on only from a session
that has a second factor itself (an owner cannot lock the org out of its own api, themselves
included); every change is audited."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.api import audit
from services.api.members.service import lock_org
from services.api.principal import Principal
from services.api.second_factor import queries
from services.api.second_factor.policy import MULTI_FACTOR
from shared.errors import Conflict, Forbidden
from shared.roles import Role


class NotOwner(Forbidden):
    default_detail = "Only an owner can change the organization's second-factor policy."


class OwnSecondFactorFirst(Conflict):
    default_detail = "Sign in with a second factor yourself before requiring one from every member."


async def set_policy(session: AsyncSession, me: Principal, required: bool) -> bool:
    """Set the policy; the value now in force."""
    me = await lock_org(session, me)  # the role as of now
    if me.role is not Role.OWNER:
        raise NotOwner()
    if required and me.claims.acr != MULTI_FACTOR:
        raise OwnSecondFactorFirst()
    if required == me.org_requires_second_factor:
        return required
    await queries.set_required(session, me.org_id, required)
    await audit.record(
        session,
        me,
        "org.second_factor_policy_changed",
        target_type="organization",
        target_id=me.org_id,
        details={"require_second_factor": {"from": me.org_requires_second_factor, "to": required}},
    )
    return required
