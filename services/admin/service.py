"""The operator's actions: each one transaction, audited as done by the operator.

Actions that end sessions write the revoked-session markers to Redis before the commit (as the
auth service does): if Redis is unreachable the action fails as a whole and changes nothing,
instead of leaving access tokens alive for their remaining lifetime.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.admin import queries
from services.admin.queries import OrgRow, UserRow
from services.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Passwords
from shared import audit
from shared.access_tokens import mark_sessions_revoked
from shared.db import set_tenant, transaction
from shared.errors import Conflict, Forbidden, NotFound, ServiceUnavailable, ValidationFailed
from shared.settings import Settings

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
Text200 = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")


class NewOrg(BaseModel):
    """What `create-org` needs; the password never appears in an error message."""

    model_config = ConfigDict(str_strip_whitespace=True)

    org_name: str = Text200
    owner_email: EmailStr = Field(max_length=320)
    owner_name: str = Text200
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, repr=False)


def parse_new_org(**values: Any) -> NewOrg:
    """Validate create-org input, naming each bad field (never echoing a value)."""
    try:
        return NewOrg(**values)
    except ValidationError as error:
        lines = [
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        ]
        raise ValidationFailed("; ".join(lines)) from None


@dataclass(frozen=True)
class Admin:
    """What the actions work with: settings, the administrator's sessions, Redis, the operator."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    operator: str

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with transaction(self.sessionmaker) as db:
            if not await queries.bypasses_rls(db):
                raise Forbidden(
                    "this database role cannot see every organization: use the administrator "
                    "URL (the migrate job's DATABASE_URL)"
                )
            yield db

    async def _audit(
        self, db: AsyncSession, org_id: UUID, action: str, target: UserRow | OrgRow, **details: Any
    ) -> None:
        await set_tenant(db, org_id)
        await audit.record(
            db,
            org_id=org_id,
            action=action,
            actor_user_id=None,
            target_type="user" if isinstance(target, UserRow) else "organization",
            target_id=target.id,
            details={"operator": self.operator, "via": "admin-cli", **details},
        )

    async def _mark_revoked(self, sids: list[UUID]) -> None:
        try:
            await mark_sessions_revoked(self.redis, self.settings, sids)
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(
                "Redis is unreachable, so access tokens could not be stopped; nothing was changed"
            ) from error


def parse_user_ref(ref: str) -> tuple[UUID | None, str | None]:
    """A user is named by id or by email address."""
    ref = ref.strip()
    if _UUID.match(ref):
        return UUID(ref), None
    if "@" in ref and len(ref) <= 320:
        return None, ref
    raise ValidationFailed(f"{ref[:80]!r} is neither a user id nor an email address")


async def _user(db: AsyncSession, ref: str) -> UserRow:
    user_id, email = parse_user_ref(ref)
    found = await queries.find_user(db, user_id=user_id, email=email)
    if found is None:
        raise NotFound(f"no user {ref.strip()[:80]!r}")
    return found


async def list_orgs(admin: Admin) -> list[OrgRow]:
    async with admin.transaction() as db:
        return await queries.list_orgs(db)


async def list_users(admin: Admin, org: str | None) -> list[UserRow]:
    async with admin.transaction() as db:
        org_id = None
        if org is not None:
            if not _UUID.match(org.strip()):
                raise ValidationFailed(f"{org[:80]!r} is not an organization id")
            org_id = UUID(org.strip())
            if await queries.find_org(db, org_id) is None:
                raise NotFound(f"no organization {org_id}")
        return await queries.list_users(db, org_id)


async def create_org(admin: Admin, new: NewOrg) -> UserRow:
    """Create an org and its owner with a verified email and a password (no email needed)."""
    passwords = Passwords(admin.settings)
    try:
        password_hash = await passwords.hash(new.password)
    finally:
        passwords.close()
    try:
        async with admin.transaction() as db:
            return await _insert_org_with_owner(
                admin,
                db,
                "admin.org_created",
                org_name=new.org_name,
                email=str(new.owner_email).lower(),
                name=new.owner_name,
                password_hash=password_hash,
            )
    except IntegrityError:
        raise Conflict(f"a user with the email {str(new.owner_email)!r} already exists") from None


SAFE_PATH = (
    "create the account with create-org (any password, never sent to anyone), then send the "
    "address a password reset (POST /api/v1/auth/password/forgot): only the mailbox owner "
    "can then choose the password"
)


async def verify_email(admin: Admin, ref: str) -> tuple[UserRow, bool]:
    """Mark an existing user's email verified. Returns the user and whether anything changed.

    An address with no account is refused, pending sign-ups or not: an attempt's password was
    chosen by whoever registered, and the operator cannot tell the mailbox owner's attempt from
    a squatter's (even when there is only one: the owner's own may never have been recorded).
    """
    async with admin.transaction() as db:
        user_id, email = parse_user_ref(ref)
        found = await queries.find_user(db, user_id=user_id, email=email)
        if found is None and email is not None:
            pending = await queries.pending_signup_count(db, email)
            if pending:
                raise Conflict(
                    f"{email.strip()[:80]!r} has no account, only {pending} pending sign-up(s),"
                    " whose password may have been chosen by someone else; verify-email never"
                    f" activates one. Instead {SAFE_PATH}"
                )
        user = await _user(db, ref)
        await queries.lock_user(db, user.id)
        changed = await queries.mark_email_verified(db, user.id)
        if changed:
            await admin._audit(db, user.org_id, "admin.email_verified", user)
        return user, changed


class _Owner(TypedDict):
    org_name: str
    email: str  # lowercase
    name: str
    password_hash: str


async def _insert_org_with_owner(
    admin: Admin, db: AsyncSession, action: str, **owner: Unpack[_Owner]
) -> UserRow:
    """Create an org and its verified owner, audited as `action`."""
    org_id, user_id = uuid4(), uuid4()
    await set_tenant(db, org_id)
    await queries.insert_org_with_owner(db, org_id=org_id, user_id=user_id, **owner)
    # The address's pending sign-ups are moot now (as when an invitation is accepted).
    await queries.drop_signups(db, owner["email"])
    created = await _user(db, str(user_id))
    await admin._audit(db, org_id, action, created, org_name=owner["org_name"])
    return created


async def revoke_sessions(admin: Admin, ref: str) -> tuple[UserRow, int]:
    """Revoke every session of the user; its access tokens stop at once (Redis markers)."""
    async with admin.transaction() as db:
        user = await _user(db, ref)
        await queries.lock_user(db, user.id)
        sids = await queries.revoke_sessions(db, user.id, reason="admin_revoked")
        await admin._audit(db, user.org_id, "admin.sessions_revoked", user, sessions=len(sids))
        await admin._mark_revoked(sids)
        return user, len(sids)


async def set_disabled(admin: Admin, ref: str, *, disabled: bool) -> tuple[UserRow, bool, int]:
    """Disable (and revoke every session of) a user, or re-enable one.

    Returns the user, whether its state changed and how many sessions were revoked.
    """
    async with admin.transaction() as db:
        user = await _user(db, ref)
        # Row lock first: a login in flight either finished (its session is revoked below) or
        # waits for this commit and then sees the user disabled.
        await queries.lock_user(db, user.id)
        changed = await queries.set_disabled(db, user.id, disabled=disabled)
        sids: list[UUID] = []
        keys: list[UUID] = []
        if disabled:
            # Even when already disabled: revoking again is harmless and closes any gap. The
            # keys they created go too: a disabled person's bots stop with them (as on removal).
            sids = await queries.revoke_sessions(db, user.id, reason="user_disabled")
            keys = await queries.revoke_api_keys_created_by(db, user.id)
        if changed or sids or keys:
            await admin._audit(
                db,
                user.org_id,
                "admin.user_disabled" if disabled else "admin.user_enabled",
                user,
                **({"sessions_revoked": len(sids)} if disabled else {}),
                **({"api_keys_revoked": [str(key) for key in keys]} if keys else {}),
            )
        await admin._mark_revoked(sids)
        return user, changed, len(sids)
