"""Removing every second factor of a user (TOTP, passkeys, recovery codes): audited with the
operator's name and mailed to the user, so a removal they did not ask for does not go unseen.
Every session of the user is revoked: their aal2 level rested on the factors removed."""

from __future__ import annotations

from arq.connections import ArqRedis

from services.admin.queries import UserRow, find_user, revoke_sessions
from services.admin.second_factors import queries
from services.admin.second_factors.queries import Removed
from services.admin.service import Admin, parse_user_ref
from shared.db import set_tenant
from shared.email_queue import SecondFactorsRemovedProps, enqueue_email
from shared.errors import NotFound

ACCOUNT_PAGE = "/account#second-factors"


async def remove_second_factors(admin: Admin, ref: str) -> tuple[UserRow, Removed]:
    user_id, email = parse_user_ref(ref)
    async with admin.transaction() as db:
        user = await find_user(db, user_id=user_id, email=email)
        if user is None:
            raise NotFound(f"no user {ref.strip()[:80]!r}")
        await set_tenant(db, user.org_id)
        removed = await queries.remove_all(db, user.id)
        if removed.any:
            sids = await revoke_sessions(db, user.id, reason="second_factors_removed")
            await admin._audit(
                db,
                user.org_id,
                "admin.second_factors_removed",
                user,
                totp=removed.totp,
                passkeys=removed.passkeys,
                recovery_codes=removed.recovery_codes,
                sessions_revoked=len(sids),
            )
            # Queued before the commit: a removal the user is not told about does not happen.
            assert isinstance(admin.redis, ArqRedis)
            link = str(admin.settings.app_base_url).rstrip("/") + ACCOUNT_PAGE
            await enqueue_email(
                admin.redis, admin.settings, to=user.email, props=SecondFactorsRemovedProps(account_link=link)
            )
            await admin._mark_revoked(sids)
    return user, removed
