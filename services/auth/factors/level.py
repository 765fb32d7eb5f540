"""How a session was entered: RFC 8176 `amr` values, an `acr` and the time of the authentication.

`acr` is `aal1` for one factor and `aal2` for two (a password or emailed link plus a TOTP code,
a recovery code or a passkey; or a passkey with user verification alone). Values:

| method | amr |
|---|---|
| password | `pwd` |
| magic link | `email` |
| sign-up verification, invitation | `pwd`, `email` |
| external provider | `external_provider` (RFC 8176 has no value for a federated sign-in) |
| TOTP code, recovery code (second) | + `otp`, `mfa` |
| passkey (second) | + `hwk` (device-bound) or `swk` (synced), `mfa` |
| passkey alone, user verified | `hwk`/`swk`, `user`, `mfa` |
| external provider whose MFA the operator trusts (`trust_mfa`) | `external_provider`, `mfa` |
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import StrEnum

AAL1 = "aal1"
AAL2 = "aal2"


class FirstFactor(StrEnum):
    """The `method` a first factor names its session with (audit, metrics)."""

    PASSWORD = "password"
    MAGIC_LINK = "magic_link"
    EMAIL_VERIFICATION = "email_verification"
    INVITATION = "invitation"


FIRST_FACTOR_AMR: dict[str, tuple[str, ...]] = {
    FirstFactor.PASSWORD: ("pwd",),
    FirstFactor.MAGIC_LINK: ("email",),
    FirstFactor.EMAIL_VERIFICATION: ("pwd", "email"),
    FirstFactor.INVITATION: ("pwd", "email"),
}


@dataclass(frozen=True)
class SessionLevel:
    """What the access tokens of a session say about its authentication."""

    amr: tuple[str, ...]
    acr: str
    auth_time: int

    @property
    def multi_factor(self) -> bool:
        return self.acr == AAL2

    def reauthenticated(self, now: int | None = None) -> SessionLevel:
        """The same level, proven again now."""
        return replace(self, auth_time=int(time.time()) if now is None else now)


def first_factor(method: str, now: int | None = None) -> SessionLevel:
    """The level of a first factor alone (an unknown method is still one factor)."""
    amr = FIRST_FACTOR_AMR.get(method, (method,))
    return SessionLevel(amr, AAL1, int(time.time()) if now is None else now)


def with_second(level: SessionLevel, amr: str) -> SessionLevel:
    """`level` completed by a second factor `amr` (`otp`, `hwk`, `swk`), proven now."""
    values = tuple(dict.fromkeys((*level.amr, amr, "mfa")))
    return SessionLevel(values, AAL2, int(time.time()))


def passwordless(key_kind: str) -> SessionLevel:
    """A passkey with user verification alone: possession plus the authenticator's PIN or biometric."""
    return SessionLevel((key_kind, "user", "mfa"), AAL2, int(time.time()))


def trusted_external_mfa(method: str) -> SessionLevel:
    """An external provider's sign-in that its own second factor backed (operator opted in)."""
    return SessionLevel((method, "mfa"), AAL2, int(time.time()))
