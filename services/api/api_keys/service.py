"""API key rules.

- Only an owner or an admin creates, lists or revokes keys, and never with a key (a key's
  caller is never a manager: keys cannot manage keys).
- The key is returned once at creation; only its keyed hash is stored (shared/api_keys.py).
- An expiry, when given, must be in the future. An org holds at most MAX_LIVE_KEYS working keys.
- Revoking is immediate (every request verifies the key row) and idempotent; keys are never
  deleted, so the list keeps their history. Another org's key is a 404 (RLS hides it).
- Creating and revoking are audited with the key's id, name and scopes, never its secret.
- Keys never outlive their creator's right to create them: removing a member, or demoting one
  below admin, revokes the working keys they created (audited as `api_key.revoked` with the
  reason `creator_removed` / `creator_role_changed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.api import audit
from services.api.api_keys import queries
from services.api.api_keys.queries import ApiKeyRow
from services.api.principal import Principal
from shared.api_keys import KEY_PREFIX, SCOPES, generate_key, hashing_key, key_env
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.roles import MANAGERS, Role
from shared.settings import Settings

MAX_LIVE_KEYS = 100


class ApiKeyNotFound(NotFound):
    default_detail = "No such API key."


class TooManyKeys(Conflict):
    default_detail = f"The organization already has {MAX_LIVE_KEYS} working API keys; revoke one first."


@dataclass(frozen=True)
class CreatedKey:
    row: ApiKeyRow
    token: str


def prefix(settings: Settings, row: ApiKeyRow) -> str:
    """The public start of a key, as shown in lists (`bb_<env>_<public id>`)."""
    return f"{KEY_PREFIX}{key_env(settings)}_{row.public_id}"


def normalized_scopes(scopes: Sequence[str]) -> list[str]:
    """Each scope once, in a stable order."""
    return [scope for scope in SCOPES if scope in scopes]


async def create(
    session: AsyncSession,
    me: Principal,
    *,
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
    settings: Settings,
) -> CreatedKey:
    """Make a key for the caller's org, audited; the token is in the result and nowhere else."""
    me.require_manager()
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ValidationFailed(
            "expires_at must be in the future.",
            extra={
                "errors": [
                    {"loc": ["body", "expires_at"], "msg": "must be in the future", "type": "value_error"}
                ]
            },
        )
    if await queries.count_live(session) >= MAX_LIVE_KEYS:
        raise TooManyKeys()
    new = generate_key(key_env(settings), hashing_key(settings))
    row = await queries.insert_key(
        session,
        org_id=me.org_id,
        public_id=new.public_id,
        secret_hash=new.secret_hash,
        name=name,
        scopes=normalized_scopes(scopes),
        created_by=me.user_id,
        expires_at=expires_at,
    )
    await audit.record(
        session,
        me,
        "api_key.created",
        target_type="api_key",
        target_id=row.id,
        details={
            "name": row.name,
            "scopes": row.scopes,
            "prefix": new.prefix,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        },
    )
    return CreatedKey(row=row, token=new.token)


async def list_keys(
    session: AsyncSession, me: Principal, *, limit: int, cursor: str | None
) -> tuple[Sequence[ApiKeyRow], str | None]:
    """One page of the org's keys, newest first, and the next cursor."""
    me.require_manager()
    return await queries.KEYS.page(session, limit=limit, cursor=cursor)


async def revoke(session: AsyncSession, me: Principal, key_id: UUID) -> None:
    """Revoke a key at once, audited; revoking a revoked key changes nothing."""
    me.require_manager()
    row = await queries.KEYS.get(session, key_id, lock=True)
    if row is None:
        raise ApiKeyNotFound()
    if row.revoked_at is not None:
        return
    await queries.mark_revoked(session, row.id, me.user_id)
    await audit.record(
        session,
        me,
        "api_key.revoked",
        target_type="api_key",
        target_id=row.id,
        details={"name": row.name, "scopes": row.scopes},
    )


async def revoke_beyond_creator_rights(
    session: AsyncSession, me: Principal, creator_id: UUID, role: Role | None
) -> None:
    """Revoke the working keys `creator_id` made if `role` may not create keys (None: the
    creator is being removed), audited with the reason."""
    if role in MANAGERS:
        return
    revoked = await queries.revoke_live_created_by(session, creator_id, me.user_id)
    reason = "creator_removed" if role is None else "creator_role_changed"
    for key in revoked:
        await audit.record(
            session,
            me,
            "api_key.revoked",
            target_type="api_key",
            target_id=key.id,
            details={"name": key.name, "scopes": key.scopes, "reason": reason, "creator": str(creator_id)},
        )
