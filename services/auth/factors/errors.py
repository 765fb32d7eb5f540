"""The named errors of second factors (auth only; the ones the api shares are in shared/errors.py)."""

from __future__ import annotations

from services.auth.factors.challenges import Pending
from shared.errors import Conflict, NotFound, Unauthorized


class SecondFactorChallenge(Unauthorized):
    """The first factor was right; the account has a second factor: finish with it.

    The body carries `second_factor_required: true`, the `challenge` to post with a code or an
    assertion to POST /api/v1/auth/second-factor, the `methods` it accepts (`totp`,
    `recovery_code`, `webauthn`), `expires_in` (seconds) and, with passkeys, `webauthn` (the
    PublicKeyCredentialRequestOptions to pass to navigator.credentials.get).
    """

    slug, title = "second-factor-challenge", "Second Factor Challenge"
    default_detail = "Enter a code from your authenticator app or a recovery code, or use a passkey."

    def __init__(self, pending: Pending) -> None:
        super().__init__(
            extra={
                "second_factor_required": True,
                "challenge": pending.challenge,
                "methods": pending.methods,
                "expires_in": pending.expires_in,
                "webauthn": pending.webauthn,
            },
            headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"},
        )


class InvalidChallenge(Unauthorized):
    """The sign-in challenge is unknown, expired, spent or out of attempts: sign in again."""

    slug, title = "invalid-second-factor-challenge", "Invalid Second Factor Challenge"
    default_detail = "The sign-in challenge is invalid, expired or used up; sign in again."


class SecondFactorRejected(Unauthorized):
    """The code or assertion did not prove the second factor."""

    slug, title = "invalid-second-factor", "Invalid Second Factor"
    default_detail = "The code or passkey was not accepted."


class TotpAlreadyEnabled(Conflict):
    default_detail = "An authenticator app is already enabled; disable it first to enrol another."


class NoPendingTotp(Conflict):
    default_detail = "There is no authenticator app enrolment to confirm; start one first."


class NoSecondFactor(Conflict):
    default_detail = "Enable an authenticator app or a passkey first."


class PasskeyNotFound(NotFound):
    default_detail = "No such passkey."


class PasskeyExists(Conflict):
    default_detail = "This passkey is registered already."
