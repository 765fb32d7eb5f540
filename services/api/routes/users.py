"""Members of the caller's organization: list, get, change (name, role), remove.

Rules: names are changed by their owner only; roles by owners and admins; only an owner can
grant or revoke `owner`; the last owner can never be demoted or removed (checked under a lock
on the org row so two concurrent demotions cannot both pass). A member can change no role,
their own included.
"""

# SQL here is assembled from this module's constant fragments only; values are bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
from uuid import UUID

from fastapi import APIRouter, Request, Response
from redis.exceptions import RedisError
from sqlalchemy import text

from services.api import audit
from services.api.deps import CurrentUser, Principal, TenantSession
from services.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_time_id_cursor,
    encode_cursor,
    split_page,
)
from services.api.routes import API_PREFIX
from services.api.routes.common import USER_COLUMNS, lock_org, owner_count, user_out
from services.api.schemas import UserPatch
from shared.access_tokens import mark_sessions_revoked
from shared.errors import Conflict, Forbidden, NotFound
from shared.resources import ResourcesDep
from shared.user_schema import User

router = APIRouter(prefix=API_PREFIX, tags=["users"])
logger = logging.getLogger("blockbot.api.users")
LAST_OWNER_DETAIL = "The organization's last owner cannot be demoted or removed."


@router.get("/users", summary="Members of the organization, oldest first")
async def list_users(
    me: CurrentUser, session: TenantSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[User]:
    params: dict[str, object] = {"limit": limit + 1}
    where = ""
    if cursor is not None:
        params["ts"], params["id"] = decode_time_id_cursor(cursor)
        where = "WHERE (created_at, id) > (:ts, :id)"
    rows = (
        await session.execute(
            text(f"SELECT {USER_COLUMNS} FROM users {where} ORDER BY created_at, id LIMIT :limit"),
            params,
        )
    ).all()
    page, more = split_page(rows, limit)
    next_cursor = encode_cursor(page[-1].created_at.isoformat(), page[-1].id) if more else None
    return Page[User](items=[user_out(r) for r in page], next_cursor=next_cursor)


async def _load(session: TenantSession, user_id: UUID, *, lock: bool = False) -> User:
    suffix = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT {USER_COLUMNS} FROM users WHERE id = :id{suffix}"), {"id": user_id}
        )
    ).one_or_none()
    if row is None:  # another org's user is invisible (RLS): the same 404
        raise NotFound("No such user.")
    return user_out(row)


@router.get("/users/{user_id}", summary="One member")
async def get_user(user_id: UUID, me: CurrentUser, session: TenantSession) -> User:
    return await _load(session, user_id)


def _check_role_change(me: Principal, target: User, new_role: str) -> None:
    if not me.is_manager:
        raise Forbidden("Only an owner or an admin can change roles.")
    if (target.role == "owner" or new_role == "owner") and me.role != "owner":
        raise Forbidden("Only an owner can grant or revoke the owner role.")


@router.patch("/users/{user_id}", summary="Change a member's name (self) or role (owner/admin)")
async def patch_user(
    user_id: UUID, body: UserPatch, me: CurrentUser, session: TenantSession, request: Request
) -> User:
    me = await lock_org(session, me)
    target = await _load(session, user_id, lock=True)
    name_change = body.name is not None and body.name != target.name
    role_change = body.role is not None and body.role != target.role
    if name_change and target.id != me.user_id:
        raise Forbidden("Only the user themselves can change their name.")
    if role_change:
        assert body.role is not None
        _check_role_change(me, target, body.role)
        if target.role == "owner" and await owner_count(session) <= 1:
            raise Conflict(LAST_OWNER_DETAIL)
    if not name_change and not role_change:
        return target
    row = (
        await session.execute(
            text(
                "UPDATE users SET name = :name, role = :role, updated_at = now() WHERE id = :id"
                f" RETURNING {USER_COLUMNS}"
            ),
            {
                "id": target.id,
                "name": body.name if name_change else target.name,
                "role": body.role if role_change else target.role,
            },
        )
    ).one()
    if role_change:
        await audit.record(
            session, request, me, "user.role_changed", target_type="user", target_id=target.id,
            details={"from": target.role, "to": body.role},
        )
    if name_change:
        await audit.record(
            session, request, me, "user.updated", target_type="user", target_id=target.id,
            details={"fields": ["name"]},
        )
    return user_out(row)


@router.delete("/users/{user_id}", status_code=204, summary="Remove a member (owner/admin)")
async def delete_user(
    user_id: UUID,
    me: CurrentUser,
    session: TenantSession,
    request: Request,
    resources: ResourcesDep,
) -> Response:
    me = await lock_org(session, me)
    target = await _load(session, user_id, lock=True)
    if not me.is_manager:
        raise Forbidden("Only an owner or an admin can remove members.")
    if target.role == "owner":
        if me.role != "owner":
            raise Forbidden("Only an owner can remove an owner.")
        if await owner_count(session) <= 1:
            raise Conflict(LAST_OWNER_DETAIL)
    sids = (
        await session.execute(
            text(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = 'user_removed'"
                " WHERE user_id = :id AND revoked_at IS NULL RETURNING id"
            ),
            {"id": target.id},
        )
    ).scalars().all()
    await session.execute(text("DELETE FROM users WHERE id = :id"), {"id": target.id})
    await audit.record(
        session, request, me, "user.removed", target_type="user", target_id=target.id,
        details={"email": target.email, "role": target.role, "sessions_revoked": len(sids)},
    )
    try:
        # Access tokens of those sessions die at once; even without Redis they are refused,
        # because every request loads the user row and this one is gone.
        await mark_sessions_revoked(resources.redis, resources.settings, sids)
    except (RedisError, OSError) as error:
        logger.warning("could not set revoked-session markers", extra={"error": repr(error)})
    return Response(status_code=204)
