"""SQL of removing a user's second factors (administrator connection, bound to the user's org)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import one_or_none

_REMOVE_ALL = text(
    "WITH t AS (DELETE FROM totp_factors WHERE user_id = :u RETURNING 1),"
    " p AS (DELETE FROM webauthn_credentials WHERE user_id = :u RETURNING 1),"
    " r AS (DELETE FROM recovery_codes WHERE user_id = :u RETURNING 1)"
    " SELECT (SELECT count(*) FROM t) AS totp, (SELECT count(*) FROM p) AS passkeys,"
    " (SELECT count(*) FROM r) AS recovery_codes"
)


@dataclass(frozen=True)
class Removed:
    totp: int
    passkeys: int
    recovery_codes: int

    @property
    def any(self) -> bool:
        return bool(self.totp or self.passkeys or self.recovery_codes)


async def remove_all(db: AsyncSession, user_id: UUID) -> Removed:
    removed = await one_or_none(db, Removed, _REMOVE_ALL, {"u": user_id})
    assert removed is not None  # the SELECT always has its row
    return removed
