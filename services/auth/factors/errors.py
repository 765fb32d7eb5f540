"""The named errors of second factors (auth only; the ones the api shares are in shared/errors.py)."""

from __future__ import annotations

from services.auth.factors.challenges import Pending
from shared.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Unauthorized


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


class TotpNotEnrolled(NotFound):
    default_detail = "No authenticator app is enrolled."


class WrongCode(BadRequest):
    default_detail = "The code is not the one your authenticator app shows now; try the next one."


class PasskeyNotVerified(BadRequest):
    default_detail = "The passkey could not be verified; start the registration again."


class NoPendingPasskey(BadRequest):
    default_detail = "No passkey registration is in progress (or it expired); start again."


class PasskeyRefused(Unauthorized):
    """A passkey assertion that is malformed, does not verify, or names no enabled user's passkey."""

    default_detail = "The passkey was not accepted."


class PasskeyChallengeUnknown(Unauthorized):
    default_detail = "The passkey challenge is unknown, expired or used; start again."


class ReauthenticationRefused(Unauthorized):
    default_detail = "The code or passkey was not accepted."


class LastSecondFactor(Conflict):
    """Removing the user's last second factor while their organization requires one."""

    slug, title = "last-second-factor", "Last Second Factor"
    default_detail = "Your organization requires a second factor: add another one before removing this one."


class SecondFactorNeeded(Unauthorized):
    """Reauthentication with a password alone for an account that has a second factor."""

    slug, title = "reauthentication-needs-second-factor", "Reauthentication Needs a Second Factor"
    default_detail = (
        "Confirm with your authenticator app, a passkey or a recovery code: this account has a second factor."
    )


class TotpKeyUnavailable(ServiceUnavailable):
    """A TOTP secret sealed under a key TOTP_ENCRYPTION_KEYS lacks (an error in the log, too)."""

    slug, title = "totp-key-unavailable", "Authenticator App Unavailable"
    default_detail = "Authenticator app codes cannot be checked now; use a passkey or a recovery code."
