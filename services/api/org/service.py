"""Organization rules: only an owner or an admin renames it (their role as of the org lock);
a rename to the same name writes nothing; every rename is audited with both names."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.api import audit
from services.api.members.service import lock_org
from services.api.org import queries
from services.api.org.queries import OrgRow
from services.api.principal import Principal


async def rename(session: AsyncSession, me: Principal, name: str) -> OrgRow | None:
    """The renamed org, or None when `name` is already its name."""
    me.require_manager()
    me = await lock_org(session, me)  # the role as of now, not as of the request's first read
    me.require_manager()
    if name == me.org_name:
        return None
    row = await queries.rename(session, me.org_id, name)
    await audit.record(
        session,
        me,
        "org.updated",
        target_type="organization",
        target_id=me.org_id,
        details={"changes": {"name": {"from": me.org_name, "to": name}}},
    )
    return row
