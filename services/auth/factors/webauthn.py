"""WebAuthn ceremonies with py_webauthn: options, and verification of attestations and assertions.

The relying party is the web app: its ID is APP_BASE_URL's host, its one accepted origin that
URL's scheme, host and port. A credential's user handle is the user's id (16 bytes, no PII).
Sign counts are compared here, after the signature is verified (a regression is then proven to
come from the credential itself: a cloned authenticator), not by the library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from services.auth.factors.queries import PasskeyRow
from shared.access_tokens import b64url_decode
from shared.settings import Settings

TIMEOUT_MS = 120_000
_TRANSPORTS = {t.value: t for t in AuthenticatorTransport}


class InvalidCredential(Exception):
    """A registration or assertion that does not verify (malformed, wrong RP, bad signature...)."""


# What parsing a client's JSON can raise, at any depth (py_webauthn, CBOR, base64, JSON): the
# body is the client's to make up, so each of these is a refusal, never a server error.
_MALFORMED = (WebAuthnException, ValueError, LookupError, TypeError, AttributeError, RecursionError)
ATTESTATION_FIELDS = ("clientDataJSON", "attestationObject")
ASSERTION_FIELDS = ("clientDataJSON", "authenticatorData", "signature")


def well_formed(credential: object, fields: tuple[str, ...]) -> bool:
    """Whether `credential` has the JSON types of a PublicKeyCredential: string `id`, `rawId`,
    `type` and response `fields`; `userHandle` and `authenticatorAttachment` a string or absent,
    `transports` a list, `clientExtensionResults` an object."""
    if not isinstance(credential, dict):
        return False
    response = credential.get("response")
    return (
        all(isinstance(credential.get(name), str) for name in ("id", "rawId", "type"))
        and isinstance(response, dict)
        and all(isinstance(response.get(name), str) for name in fields)
        and isinstance(response.get("userHandle"), str | None)
        and isinstance(response.get("transports", []), list)
        and isinstance(credential.get("authenticatorAttachment"), str | None)
        and isinstance(credential.get("clientExtensionResults", {}), dict)
    )


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str
    name: str


def relying_party(settings: Settings) -> RelyingParty:
    base = settings.app_base_url
    default_port = {"http": 80, "https": 443}.get(base.scheme)
    port = "" if base.port in (None, default_port) else f":{base.port}"
    host = base.host or "localhost"
    return RelyingParty(id=host, origin=f"{base.scheme}://{host}{port}", name=settings.product_name)


def _descriptor(row: PasskeyRow) -> PublicKeyCredentialDescriptor:
    transports = [_TRANSPORTS[t] for t in row.transports if t in _TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=row.credential_id, transports=transports or None)


def registration_options(
    settings: Settings, *, user_id: UUID, email: str, name: str, existing: list[PasskeyRow]
) -> tuple[bytes, dict[str, Any]]:
    """(challenge, PublicKeyCredentialCreationOptions as JSON) for a new discoverable passkey."""
    rp = relying_party(settings)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_id.bytes,
        user_name=email,
        user_display_name=name,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[_descriptor(row) for row in existing],
    )
    return options.challenge, options_to_json_dict(options)


def assertion_options(
    settings: Settings,
    allowed: list[PasskeyRow],
    *,
    user_verification: UserVerificationRequirement,
    challenge: bytes | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """(challenge, PublicKeyCredentialRequestOptions as JSON), for `challenge` or a new one; no
    `allowCredentials` for a discoverable (passwordless) sign-in."""
    options = generate_authentication_options(
        rp_id=relying_party(settings).id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=[_descriptor(row) for row in allowed],
        user_verification=user_verification,
    )
    return options.challenge, options_to_json_dict(options)


@dataclass(frozen=True)
class NewCredential:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    backup_eligible: bool
    transports: list[str]


def verify_registration(settings: Settings, credential: dict[str, Any], challenge: bytes) -> NewCredential:
    rp = relying_party(settings)
    if not well_formed(credential, ATTESTATION_FIELDS):
        raise InvalidCredential("not a PublicKeyCredential")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
    except _MALFORMED as error:
        raise InvalidCredential(str(error)) from None
    response = credential.get("response")
    transports = response.get("transports") if isinstance(response, dict) else None
    return NewCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        transports=[t for t in transports or [] if isinstance(t, str) and t in _TRANSPORTS],
    )


def presented_challenge(credential: dict[str, Any]) -> bytes | None:
    """The challenge an assertion answers (from its clientDataJSON), to find its ceremony."""
    if not well_formed(credential, ASSERTION_FIELDS):
        return None
    try:
        client_data = parse_client_data_json(b64url_decode(credential["response"]["clientDataJSON"]))
    except _MALFORMED:
        return None
    return client_data.challenge


def presented_credential_id(credential: dict[str, Any]) -> bytes | None:
    raw = credential.get("rawId")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return b64url_decode(raw)
    except ValueError:
        return None


def user_handle(credential: dict[str, Any]) -> bytes | None:
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if not isinstance(handle, str) or not handle:
        return None
    try:
        return b64url_decode(handle)
    except ValueError:
        return None


@dataclass(frozen=True)
class Assertion:
    sign_count: int
    regressed: bool  # a valid signature with a count not above the stored one: a clone
    amr: str  # `swk` for a synced (backup-eligible) passkey, `hwk` for a device-bound one


def verify_assertion(
    settings: Settings,
    credential: dict[str, Any],
    *,
    challenge: bytes,
    passkey: PasskeyRow,
    require_user_verification: bool,
) -> Assertion:
    rp = relying_party(settings)
    if not well_formed(credential, ASSERTION_FIELDS):
        raise InvalidCredential("not a PublicKeyCredential")
    try:
        verified = verify_authentication_response(
            credential=json.dumps(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=0,  # compared below, once the signature is proven
            require_user_verification=require_user_verification,
        )
    except _MALFORMED as error:
        raise InvalidCredential(str(error)) from None
    new, stored = verified.new_sign_count, passkey.sign_count
    regressed = (new > 0 or stored > 0) and new <= stored
    synced = passkey.backup_eligible or verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    return Assertion(sign_count=new, regressed=regressed, amr="swk" if synced else "hwk")
