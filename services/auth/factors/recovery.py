"""Recovery codes: ten single-use codes, shown once, stored as SHA-256 digests.

Each code is 50 random bits written as ten base32 characters (`abcde-fghij`); a digest is enough
at that entropy (no slow hash: there is nothing to guess from it). Regenerating replaces the
whole set. Using one is audited and mailed to the user, with the number left.
"""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import emails
from services.auth.audit import audit_user_event
from services.auth.factors import queries
from services.auth.identities.queries import UserRecord
from services.auth.state import AuthState, ClientInfo

CODES = 10
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_CHARS = 10


def new_code() -> str:
    bits = secrets.randbits(5 * _CHARS)
    chars = "".join(_ALPHABET[(bits >> (5 * i)) & 31] for i in range(_CHARS))
    return f"{chars[:5]}-{chars[5:]}"


def normalize(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def digest(code: str) -> bytes:
    return hashlib.sha256(b"blockbot recovery code v1:" + normalize(code).encode()).digest()


async def replace_codes(db: AsyncSession, *, user_id: UUID, org_id: UUID) -> list[str]:
    """A new set (the old one dies); the codes in clear, to be shown once."""
    codes = [new_code() for _ in range(CODES)]
    await queries.replace_recovery_codes(
        db, user_id=user_id, org_id=org_id, hashes=[digest(c) for c in codes]
    )
    return codes


async def regenerate(
    db: AsyncSession, *, user_id: UUID, org_id: UUID, client: ClientInfo
) -> list[str] | None:
    """A new set for a user with a second factor (None without one: codes only back one up)."""
    if not (await queries.enrolled(db, user_id)).any:
        return None
    codes = await replace_codes(db, user_id=user_id, org_id=org_id)
    await audit_user_event(
        db, org_id=org_id, user_id=user_id, action="second_factor.recovery_codes_regenerated", client=client
    )
    return codes


async def spend(db: AsyncSession, state: AuthState, user: UserRecord, code: str, client: ClientInfo) -> bool:
    """Use one of the user's codes to sign in: audited and mailed; False when it is not one."""
    if len(normalize(code)) != _CHARS or not await queries.use_recovery_code(db, user.id, digest(code)):
        return False
    remaining = (await queries.enrolled(db, user.id)).recovery_codes
    await audit_user_event(
        db,
        org_id=user.org_id,
        user_id=user.id,
        action="second_factor.recovery_code_used",
        client=client,
        details={"remaining": remaining},
    )
    await emails.send_recovery_code_used(state, to=user.email, remaining=remaining)
    return True
