"""Request and response bodies of the second-factor routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, RootModel, model_validator

from services.auth.schemas import AnyPassword, Body
from shared.names import DisplayName

Code = Annotated[str, Field(min_length=1, max_length=32)]
# A PublicKeyCredential as JSON (navigator.credentials.create/get, base64url fields).
PublicKeyCredential = Annotated[
    dict[str, Any], Field(description="A PublicKeyCredential serialized as JSON (base64url).")
]
ChallengeToken = Annotated[str, Field(min_length=1, max_length=128)]


class PasskeyOut(BaseModel):
    id: UUID
    name: str
    synced: bool = Field(description="Backup eligible (a multi-device passkey)")
    created_at: datetime
    last_used_at: datetime | None


class FactorsOut(BaseModel):
    totp_enabled: bool
    passkeys: list[PasskeyOut]
    recovery_codes_remaining: int
    org_requires_second_factor: bool


class TotpEnrolmentOut(BaseModel):
    secret: str = Field(description="Base32, for typing into an authenticator app")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as a QR code, an inline SVG element")


class TotpCodeIn(Body):
    code: Code


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] | None = Field(
        description="Ten single-use codes, shown this once; null when the user already has some"
    )


class PasskeyIn(Body):
    name: DisplayName
    credential: PublicKeyCredential


class PasskeyCreatedOut(BaseModel):
    passkey: PasskeyOut
    recovery_codes: list[str] | None


class AssertionIn(Body):
    credential: PublicKeyCredential


def _exactly_one(values: list[object], names: str) -> None:
    if sum(value is not None for value in values) != 1:
        raise ValueError(f"give exactly one of {names}")


class SecondFactorIn(Body):
    challenge: ChallengeToken
    totp_code: Code | None = None
    recovery_code: Code | None = None
    webauthn: PublicKeyCredential | None = None

    @model_validator(mode="after")
    def _one_factor(self) -> SecondFactorIn:
        _exactly_one(
            [self.totp_code, self.recovery_code, self.webauthn], "totp_code, recovery_code, webauthn"
        )
        return self


class ReauthenticateIn(Body):
    """One proof: with a second factor enrolled, `totp_code`, `recovery_code` or `webauthn` (a
    password alone is refused with `reauthentication-needs-second-factor`); without, `password`."""

    password: AnyPassword | None = None
    totp_code: Code | None = None
    recovery_code: Code | None = None
    webauthn: PublicKeyCredential | None = None

    @model_validator(mode="after")
    def _one_proof(self) -> ReauthenticateIn:
        _exactly_one(
            [self.password, self.totp_code, self.recovery_code, self.webauthn],
            "password, totp_code, recovery_code, webauthn",
        )
        return self


class ReauthenticatedOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class ChallengeIn(Body):
    challenge: ChallengeToken


class ChallengeOut(BaseModel):
    """The fields of a `second-factor-challenge` problem, restated for a live challenge."""

    second_factor_required: bool
    challenge: str
    methods: list[str]
    expires_in: int
    webauthn: dict[str, Any] | None


class WebAuthnOptions(RootModel[dict[str, Any]]):
    """WebAuthn options as the browser's `navigator.credentials` takes them after base64url
    decoding (PublicKeyCredentialCreationOptions or PublicKeyCredentialRequestOptions JSON)."""
