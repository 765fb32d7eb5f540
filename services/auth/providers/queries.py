"""SQL of external identities, and of the accounts a first external sign-in creates.

`by_subject` is a cross-tenant read (the auth_identity_lookup policy: the callback does not know
the tenant yet); every other statement runs in a transaction bound to the user's org.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.roles import Role
from shared.rows import all_of, exists, one_or_none


class ExternalIdentity(BaseModel):
    """One linked identity of a user."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    org_id: UUID
    user_id: UUID
    provider: str
    subject: str
    email: str | None
    created_at: datetime
    last_used_at: datetime | None


_COLUMNS = "id, org_id, user_id, provider, subject, email, created_at, last_used_at"


async def by_subject(db: AsyncSession, provider: str, subject: str) -> ExternalIdentity | None:
    """The identity of a provider's subject, in any org."""
    statement = text(
        f"SELECT {_COLUMNS} FROM external_identities WHERE provider = :provider AND subject = :subject"
    )
    return await one_or_none(db, ExternalIdentity, statement, {"provider": provider, "subject": subject})


async def of_user(db: AsyncSession, user_id: UUID) -> list[ExternalIdentity]:
    """The user's identities, oldest first."""
    statement = text(
        f"SELECT {_COLUMNS} FROM external_identities WHERE user_id = :user ORDER BY created_at, id"
    )
    return await all_of(db, ExternalIdentity, statement, {"user": user_id})


async def insert(
    db: AsyncSession, *, org_id: UUID, user_id: UUID, provider: str, subject: str, email: str | None
) -> UUID:
    """Link an identity (unique per provider and subject, and per user and provider)."""
    row = (
        await db.execute(
            text(
                "INSERT INTO external_identities (org_id, user_id, provider, subject, email, last_used_at)"
                " VALUES (:org, :user, :provider, :subject, :email, now()) RETURNING id"
            ),
            {"org": org_id, "user": user_id, "provider": provider, "subject": subject, "email": email},
        )
    ).scalar_one()
    return UUID(str(row))


async def touch(db: AsyncSession, identity_id: UUID, email: str | None) -> None:
    """Record a sign-in with the identity, and the address the provider gave this time."""
    await db.execute(
        text("UPDATE external_identities SET last_used_at = now(), email = :email WHERE id = :id"),
        {"id": identity_id, "email": email},
    )


async def delete_of_user(db: AsyncSession, identity_id: UUID, user_id: UUID) -> ExternalIdentity | None:
    """Unlink one of the user's identities; None when the user has no such identity."""
    statement = text(
        f"DELETE FROM external_identities WHERE id = :id AND user_id = :user RETURNING {_COLUMNS}"
    )
    return await one_or_none(db, ExternalIdentity, statement, {"id": identity_id, "user": user_id})


async def lock_user_has_other_sign_in(db: AsyncSession, user_id: UUID) -> bool | None:
    """Lock the user row (unlinks and password changes take turns) and say whether the user can
    sign in without a provider: a password or a passkey (passwordless); None when the user is
    gone."""
    row = (
        await db.execute(
            text(
                "SELECT password_hash IS NOT NULL"
                " OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id) AS other"
                " FROM users u WHERE u.id = :id FOR UPDATE OF u"
            ),
            {"id": user_id},
        )
    ).one_or_none()
    return None if row is None else bool(row.other)


async def session_signed_in_at(db: AsyncSession, session_id: UUID, user_id: UUID) -> datetime | None:
    """When the user of the live session `session_id` last proved who they are (sign-in or
    re-authentication); None if the session is not live."""
    signed_in = (
        await db.execute(
            text(
                "SELECT auth_time FROM sessions WHERE id = :id AND user_id = :user"
                " AND revoked_at IS NULL AND expires_at > now()"
            ),
            {"id": session_id, "user": user_id},
        )
    ).scalar_one_or_none()
    return signed_in if isinstance(signed_in, datetime) else None


async def seconds_since(db: AsyncSession, moment: datetime) -> float:
    """Seconds from `moment` to the database's now (one clock for the comparison)."""
    value = (
        await db.execute(text("SELECT extract(epoch FROM now() - :moment)"), {"moment": moment})
    ).scalar_one()
    return float(value)


async def create_org_with_owner(
    db: AsyncSession, *, org_id: UUID, user_id: UUID, org_name: str, email: str, name: str
) -> None:
    """A new organization and its owner, address verified by the provider, no password
    (transaction bound to `org_id`)."""
    await db.execute(
        text("INSERT INTO organizations (id, name) VALUES (:id, :name)"), {"id": org_id, "name": org_name}
    )
    await insert_user(db, user_id=user_id, org_id=org_id, email=email, name=name, role=Role.OWNER)


async def insert_user(
    db: AsyncSession, *, user_id: UUID, org_id: UUID, email: str, name: str, role: Role
) -> None:
    """A user whose address the provider verified, without a password."""
    await db.execute(
        text(
            "INSERT INTO users (id, org_id, email, name, role, email_verified_at)"
            " VALUES (:id, :org, :email, :name, :role, now())"
        ),
        {"id": user_id, "org": org_id, "email": email, "name": name, "role": str(role)},
    )


async def user_exists(db: AsyncSession, user_id: UUID) -> bool:
    """Whether the user is in the bound org."""
    return await exists(db, text("SELECT 1 FROM users WHERE id = :id"), {"id": user_id})
