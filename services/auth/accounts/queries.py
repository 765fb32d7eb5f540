"""SQL of a user's credentials: password hash, credentials version, verified address.

Every statement runs in a transaction bound to the user's org.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def mark_email_verified(db: AsyncSession, user_id: UUID) -> None:
    """Record that the user proved their address now."""
    await db.execute(
        text("UPDATE users SET email_verified_at = now(), updated_at = now() WHERE id = :id"),
        {"id": user_id},
    )


async def lock_credentials_version(db: AsyncSession, user_id: UUID) -> int | None:
    """Lock the user row against concurrent password changes and read its credentials version."""
    version = (
        await db.execute(
            text("SELECT credentials_version FROM users WHERE id = :id FOR NO KEY UPDATE"),
            {"id": user_id},
        )
    ).scalar_one_or_none()
    return None if version is None else int(version)


async def rehash_password(db: AsyncSession, user_id: UUID, password_hash: str) -> None:
    """Store a new hash of the same password (stronger parameters): the version stays."""
    await db.execute(
        text("UPDATE users SET password_hash = :hash, updated_at = now() WHERE id = :id"),
        {"hash": password_hash, "id": user_id},
    )


async def set_password(db: AsyncSession, user_id: UUID, password_hash: str | None) -> None:
    """Replace (or, with None, drop) the password; bumps the credentials version."""
    await db.execute(
        text(
            "UPDATE users SET password_hash = :hash, credentials_version ="
            " credentials_version + 1, updated_at = now() WHERE id = :id"
        ),
        {"hash": password_hash, "id": user_id},
    )
