"""Request and response bodies of the auth API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from services.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from shared.names import DisplayName
from shared.user_schema import User

NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
# Logging in with a password set under older rules still works; the cap bounds hashing work.
AnyPassword = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
Name = DisplayName
Email = Annotated[EmailStr, Field(max_length=320)]
OneTimeToken = Annotated[str, Field(min_length=1, max_length=128)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Body):
    email: Email
    password: NewPassword
    name: Name
    org_name: Name


class EmailRequest(Body):
    email: Email


class LoginRequest(Body):
    email: Email
    password: AnyPassword


class TokenRequest(Body):
    token: OneTimeToken


class VerifyEmailRequest(Body):
    token: OneTimeToken
    # The password chosen in the sign-up attempt (checked, not set: any length it could have had).
    password: AnyPassword


class PasswordResetRequest(Body):
    token: OneTimeToken
    password: NewPassword


class PasswordChangeRequest(Body):
    current_password: AnyPassword
    new_password: NewPassword


class AcceptInvitationRequest(Body):
    token: OneTimeToken
    name: Name
    password: NewPassword


class StatusResponse(BaseModel):
    status: str


class OrgOut(BaseModel):
    id: UUID
    name: str


class TokenResponse(BaseModel):
    user: User
    org: OrgOut
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    # True when the org requires a second factor and the user has none yet: the api refuses
    # this token (`second-factor-required`) until one is enrolled (/api/v1/auth/factors/...).
    second_factor_enrolment_required: bool = False


class SessionOut(BaseModel):
    id: UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool


class SessionList(BaseModel):
    items: list[SessionOut]


class JWK(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JWKS(BaseModel):
    keys: list[JWK]


class OpenIDConfiguration(BaseModel):
    """OpenID Connect Discovery 1.0 metadata, limited to what this issuer really offers."""

    issuer: str
    jwks_uri: str
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    subject_types_supported: list[str]
    response_types_supported: list[str]
    claims_supported: list[str]
