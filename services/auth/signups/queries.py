"""SQL of sign-up: the `signup_attempts` table, and the organization with its first owner.

`signup_attempts` is not a tenant table (an attempt has no organization yet); only the auth role
can read or write it.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import exists, one_or_none


@dataclass(frozen=True)
class Attempt:
    id: UUID
    email: str
    password_hash: str
    name: str
    org_name: str


async def insert(
    db: AsyncSession,
    *,
    email: str,
    digest: bytes,
    password_hash: str,
    name: str,
    org_name: str,
    ttl_seconds: int,
) -> None:
    """A new attempt, its link valid for `ttl_seconds`."""
    await db.execute(
        text(
            "INSERT INTO signup_attempts (email, token_hash, password_hash, name, org_name,"
            " expires_at) VALUES (:email, :hash, :pw, :name, :org,"
            " now() + make_interval(secs => :ttl))"
        ),
        {
            "email": email,
            "hash": digest,
            "pw": password_hash,
            "name": name,
            "org": org_name,
            "ttl": ttl_seconds,
        },
    )


async def copy_newest(
    db: AsyncSession, *, email: str, digest: bytes, link_ttl: int, signup_ttl: int
) -> str | None:
    """Copy the newest live attempt of `email` under a new token; its name, or None if none.

    The copy lives for `link_ttl` but never past `signup_ttl` after the first registration.
    """
    row = (
        await db.execute(
            text(
                "INSERT INTO signup_attempts (email, token_hash, password_hash, name, org_name,"
                " started_at, expires_at)"
                " SELECT email, :hash, password_hash, name, org_name, started_at,"
                " LEAST(now() + make_interval(secs => :link_ttl),"
                "       started_at + make_interval(secs => :signup_ttl))"
                " FROM signup_attempts WHERE email = :email AND expires_at > now()"
                " ORDER BY created_at DESC LIMIT 1"
                " RETURNING name"
            ),
            {"email": email, "hash": digest, "link_ttl": link_ttl, "signup_ttl": signup_ttl},
        )
    ).one_or_none()
    return None if row is None else str(row.name)


_FIND_LIVE = text(
    "SELECT id, email, password_hash, name, org_name FROM signup_attempts"
    " WHERE token_hash = :hash AND expires_at > now()"
)


async def find_live(db: AsyncSession, digest: bytes) -> Attempt | None:
    """The attempt of a link, while it lives."""
    return await one_or_none(db, Attempt, _FIND_LIVE, {"hash": digest})


async def claim(db: AsyncSession, attempt_id: UUID) -> bool:
    """Delete a live attempt; False when it was used concurrently or has expired."""
    statement = text("DELETE FROM signup_attempts WHERE id = :id AND expires_at > now() RETURNING id")
    return await exists(db, statement, {"id": attempt_id})


async def drop_for_email(db: AsyncSession, email: str) -> None:
    """Forget every pending attempt of an address (it has an account now)."""
    await db.execute(
        text("DELETE FROM signup_attempts WHERE email = :email"), {"email": email.strip().lower()}
    )


async def purge_expired(db: AsyncSession, batch: int) -> int:
    """Delete up to `batch` expired attempts; how many."""
    result = await db.execute(
        text(
            "DELETE FROM signup_attempts WHERE id IN (SELECT id FROM signup_attempts"
            " WHERE expires_at < now() LIMIT :batch)"
        ),
        {"batch": batch},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def create_org_with_owner(db: AsyncSession, *, org_id: UUID, user_id: UUID, attempt: Attempt) -> None:
    """The organization and its verified owner (transaction bound to `org_id`)."""
    await db.execute(
        text("INSERT INTO organizations (id, name) VALUES (:id, :name)"),
        {"id": org_id, "name": attempt.org_name},
    )
    await db.execute(
        text(
            "INSERT INTO users (id, org_id, email, name, role, password_hash,"
            " email_verified_at) VALUES (:id, :org, :email, :name, 'owner', :hash, now())"
        ),
        {
            "id": user_id,
            "org": org_id,
            "email": attempt.email,
            "name": attempt.name,
            "hash": attempt.password_hash,
        },
    )
