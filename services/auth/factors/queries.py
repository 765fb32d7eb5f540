"""SQL of second factors: TOTP secrets, recovery codes, passkeys, and the levels of sessions.

Everything runs in a transaction bound to the user's org, except `passkey_by_credential_id`, a
cross-tenant read (auth_identity_lookup policy) that learns the user of a passwordless sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.rows import all_of, exists, ids_of, one_or_none


def _bytes(value: object) -> bytes:
    # The driver may hand back bytea as memoryview.
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else b""


@dataclass(frozen=True)
class Enrolled:
    """What second factors a user has."""

    totp: bool
    passkeys: int
    recovery_codes: int  # unused ones

    @property
    def any(self) -> bool:
        return self.totp or self.passkeys > 0


_ENROLLED = text(
    "SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = :u AND enabled_at IS NOT NULL) AS totp,"
    " (SELECT count(*) FROM webauthn_credentials WHERE user_id = :u) AS passkeys,"
    " (SELECT count(*) FROM recovery_codes WHERE user_id = :u AND used_at IS NULL) AS recovery_codes"
)


async def enrolled(db: AsyncSession, user_id: UUID) -> Enrolled:
    found = await one_or_none(db, Enrolled, _ENROLLED, {"u": user_id})
    assert found is not None  # a SELECT without FROM always has its row
    return found


async def org_requires_second_factor(db: AsyncSession, org_id: UUID) -> bool:
    return await exists(
        db, text("SELECT 1 FROM organizations WHERE id = :id AND require_second_factor"), {"id": org_id}
    )


# --- TOTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpRow:
    secret_ciphertext: bytes
    key_id: str
    enabled_at: datetime | None
    last_used_step: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret_ciphertext", _bytes(self.secret_ciphertext))


async def lock_totp(db: AsyncSession, user_id: UUID) -> TotpRow | None:
    """The user's TOTP factor (pending or enabled), locked: codes are checked one at a time."""
    return await one_or_none(
        db,
        TotpRow,
        text(
            "SELECT secret_ciphertext, key_id, enabled_at, last_used_step FROM totp_factors"
            " WHERE user_id = :u FOR UPDATE"
        ),
        {"u": user_id},
    )


async def put_pending_totp(
    db: AsyncSession, *, user_id: UUID, org_id: UUID, key_id: str, ciphertext: bytes
) -> bool:
    """Store a new secret awaiting its first code; False when TOTP is already enabled."""
    return await exists(
        db,
        text(
            "INSERT INTO totp_factors (user_id, org_id, secret_ciphertext, key_id)"
            " VALUES (:u, :org, :ct, :kid) ON CONFLICT (user_id) DO UPDATE"
            " SET secret_ciphertext = EXCLUDED.secret_ciphertext, key_id = EXCLUDED.key_id,"
            " last_used_step = 0, created_at = now() WHERE totp_factors.enabled_at IS NULL RETURNING 1"
        ),
        {"u": user_id, "org": org_id, "ct": ciphertext, "kid": key_id},
    )


async def accept_totp_step(
    db: AsyncSession, user_id: UUID, *, step: int, key_id: str, ciphertext: bytes, enable: bool
) -> bool:
    """Record `step` as used (and the secret as resealed, the factor as enabled when `enable`);
    False when a step at least as new was used already (a replayed code)."""
    return await exists(
        db,
        text(
            "UPDATE totp_factors SET last_used_step = :step, key_id = :kid, secret_ciphertext = :ct,"
            " enabled_at = CASE WHEN :enable THEN coalesce(enabled_at, now()) ELSE enabled_at END"
            " WHERE user_id = :u AND last_used_step < :step RETURNING 1"
        ),
        {"u": user_id, "step": step, "kid": key_id, "ct": ciphertext, "enable": enable},
    )


async def delete_totp(db: AsyncSession, user_id: UUID) -> bool:
    return await exists(db, text("DELETE FROM totp_factors WHERE user_id = :u RETURNING 1"), {"u": user_id})


# --- recovery codes ----------------------------------------------------------------------------


async def replace_recovery_codes(
    db: AsyncSession, *, user_id: UUID, org_id: UUID, hashes: list[bytes]
) -> None:
    """The user's codes become `hashes` (the old set, used or not, is gone)."""
    await db.execute(text("DELETE FROM recovery_codes WHERE user_id = :u"), {"u": user_id})
    await db.execute(
        text(
            "INSERT INTO recovery_codes (user_id, org_id, code_hash)"
            " SELECT :u, :org, h FROM unnest(CAST(:hashes AS bytea[])) AS h"
        ),
        {"u": user_id, "org": org_id, "hashes": hashes},
    )


async def use_recovery_code(db: AsyncSession, user_id: UUID, code_hash: bytes) -> bool:
    """Spend one unused code; False when no such unused code exists."""
    return await exists(
        db,
        text(
            "UPDATE recovery_codes SET used_at = now() WHERE user_id = :u AND code_hash = :h"
            " AND used_at IS NULL RETURNING 1"
        ),
        {"u": user_id, "h": code_hash},
    )


async def delete_recovery_codes(db: AsyncSession, user_id: UUID) -> None:
    await db.execute(text("DELETE FROM recovery_codes WHERE user_id = :u"), {"u": user_id})


# --- passkeys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasskeyRow:
    id: UUID
    user_id: UUID
    org_id: UUID
    credential_id: bytes
    public_key: bytes
    sign_count: int
    name: str
    backup_eligible: bool
    transports: list[str]
    created_at: datetime
    last_used_at: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "credential_id", _bytes(self.credential_id))
        object.__setattr__(self, "public_key", _bytes(self.public_key))


_PASSKEY_COLUMNS = (
    "id, user_id, org_id, credential_id, public_key, sign_count, name, backup_eligible, transports,"
    " created_at, last_used_at"
)


async def passkeys_of(db: AsyncSession, user_id: UUID) -> list[PasskeyRow]:
    return await all_of(
        db,
        PasskeyRow,
        text(
            f"SELECT {_PASSKEY_COLUMNS} FROM webauthn_credentials WHERE user_id = :u ORDER BY created_at, id"
        ),
        {"u": user_id},
    )


async def passkey_by_credential_id(db: AsyncSession, credential_id: bytes) -> PasskeyRow | None:
    """The passkey with this credential id, in any org (cross-tenant read)."""
    return await one_or_none(
        db,
        PasskeyRow,
        text(f"SELECT {_PASSKEY_COLUMNS} FROM webauthn_credentials WHERE credential_id = :c"),
        {"c": credential_id},
    )


async def lock_passkey(db: AsyncSession, passkey_id: UUID) -> PasskeyRow | None:
    """One passkey, locked (bound transaction): sign counts advance one assertion at a time."""
    return await one_or_none(
        db,
        PasskeyRow,
        text(f"SELECT {_PASSKEY_COLUMNS} FROM webauthn_credentials WHERE id = :id FOR UPDATE"),
        {"id": passkey_id},
    )


async def insert_passkey(
    db: AsyncSession,
    *,
    user_id: UUID,
    org_id: UUID,
    credential_id: bytes,
    public_key: bytes,
    sign_count: int,
    name: str,
    backup_eligible: bool,
    transports: list[str],
) -> UUID | None:
    """A new passkey's id; None when the credential id is registered already."""
    ids = await ids_of(
        db,
        text(
            "INSERT INTO webauthn_credentials (user_id, org_id, credential_id, public_key, sign_count,"
            " name, backup_eligible, transports) VALUES (:u, :org, :c, :pk, :n, :name, :be, :tr)"
            " ON CONFLICT (credential_id) DO NOTHING RETURNING id"
        ),
        {
            "u": user_id,
            "org": org_id,
            "c": credential_id,
            "pk": public_key,
            "n": sign_count,
            "name": name,
            "be": backup_eligible,
            "tr": transports,
        },
    )
    return ids[0] if ids else None


async def record_passkey_use(db: AsyncSession, passkey_id: UUID, sign_count: int) -> None:
    await db.execute(
        text("UPDATE webauthn_credentials SET sign_count = :n, last_used_at = now() WHERE id = :id"),
        {"id": passkey_id, "n": sign_count},
    )


async def delete_passkey(db: AsyncSession, user_id: UUID, passkey_id: UUID) -> bool:
    return await exists(
        db,
        text("DELETE FROM webauthn_credentials WHERE id = :id AND user_id = :u RETURNING 1"),
        {"id": passkey_id, "u": user_id},
    )


async def delete_passkeys(db: AsyncSession, user_id: UUID) -> int:
    return len(
        await ids_of(
            db, text("DELETE FROM webauthn_credentials WHERE user_id = :u RETURNING id"), {"u": user_id}
        )
    )


# --- session levels ----------------------------------------------------------------------------


async def raise_session_level(db: AsyncSession, session_id: UUID, *, amr: list[str], acr: str) -> None:
    """The session proved a second factor now (an enrolment): its later tokens say so."""
    await db.execute(
        text("UPDATE sessions SET amr = :amr, acr = :acr, auth_time = now() WHERE id = :id"),
        {"id": session_id, "amr": amr, "acr": acr},
    )


async def single_factor_sessions(db: AsyncSession, user_id: UUID, *, keep: UUID | None) -> list[UUID]:
    """The user's live sessions entered with one factor, except `keep`."""
    return await ids_of(
        db,
        text(
            "SELECT id FROM sessions WHERE user_id = :u AND revoked_at IS NULL AND acr <> 'aal2'"
            " AND (CAST(:keep AS uuid) IS NULL OR id <> CAST(:keep AS uuid))"
        ),
        {"u": user_id, "keep": keep},
    )


async def other_live_sessions(db: AsyncSession, user_id: UUID, *, keep: UUID) -> list[UUID]:
    """The user's live sessions except `keep`."""
    return await ids_of(
        db,
        text("SELECT id FROM sessions WHERE user_id = :u AND revoked_at IS NULL AND id <> :keep"),
        {"u": user_id, "keep": keep},
    )
