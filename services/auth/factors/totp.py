"""TOTP (RFC 6238, 30 s steps, 6 digits, SHA-1 as every authenticator app expects): enrolment,
confirmation, sign-in codes, removal.

A code is checked against the current step and one step either side (clock skew), and only a
step newer than the last one accepted counts: a code is accepted once, and after it no older
code either. The check and the record of the step happen under the factor's row lock.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import pyotp
import segno
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.factors import queries
from services.auth.factors.crypto import SecretBox, UnknownKey
from services.auth.factors.errors import TotpKeyUnavailable
from services.auth.factors.queries import TotpRow

logger = logging.getLogger("blockbot.auth.totp")

SKEW_STEPS = 1


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into an app
    otpauth_uri: str
    qr_svg: str


def provisioning(secret: str, *, email: str, issuer: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
    svg = segno.make(uri, error="m").svg_inline(scale=4, title=f"{issuer} authenticator app code")
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)


def matching_step(secret: str, code: str, *, after: int, now: float | None = None) -> int | None:
    """The newest step within the skew whose code is `code` and that is newer than `after`."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.fromtimestamp(time.time() if now is None else now, UTC))
    for step in range(current + SKEW_STEPS, current - SKEW_STEPS - 1, -1):
        if step > after and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def begin(db: AsyncSession, box: SecretBox, *, user_id: UUID, org_id: UUID) -> str | None:
    """A new secret awaiting confirmation (replacing an unconfirmed one); None when enabled."""
    secret = pyotp.random_base32()
    kid, sealed = box.seal(secret.encode(), user_id.bytes)
    if not await queries.put_pending_totp(db, user_id=user_id, org_id=org_id, key_id=kid, ciphertext=sealed):
        return None
    return secret


async def check(
    db: AsyncSession, box: SecretBox, user_id: UUID, code: str, *, enable: bool = False
) -> bool | None:
    """Whether `code` is good for the user's factor (recording its step); None when there is no
    factor to check (none, or not enabled yet while not `enable`, or enabled already when `enable`)."""
    row = await queries.lock_totp(db, user_id)
    if row is None or (row.enabled_at is None) != enable:
        return None
    try:
        secret = box.open(row.key_id, row.secret_ciphertext, user_id.bytes).decode()
    except UnknownKey:
        # An operator's mistake (a key dropped from TOTP_ENCRYPTION_KEYS too early), not the
        # user's: said so in the log, and a 503 rather than a wrong-code answer.
        logger.error(
            "a TOTP secret is sealed under a key TOTP_ENCRYPTION_KEYS does not hold",
            extra={"key_id": row.key_id, "user_id": str(user_id)},
        )
        raise TotpKeyUnavailable() from None
    step = matching_step(secret, code, after=row.last_used_step)
    if step is None:
        return False
    kid, sealed = _resealed(box, row, secret, user_id)
    return await queries.accept_totp_step(
        db, user_id, step=step, key_id=kid, ciphertext=sealed, enable=enable
    )


def _resealed(box: SecretBox, row: TotpRow, secret: str, user_id: UUID) -> tuple[str, bytes]:
    """The secret under the newest key (unchanged when it already is)."""
    if row.key_id == box.current_kid:
        return row.key_id, row.secret_ciphertext
    return box.seal(secret.encode(), user_id.bytes)
