"""HTTP of second factors: managing them, finishing a sign-in with one, passkeys, step-up.

Rules in `factors/service.py` (managing) and `factors/signin.py` (signing in, reauthenticating).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from services.auth.deps import Claims, TenantSession
from services.auth.factors import service, signin
from services.auth.factors.queries import PasskeyRow
from services.auth.factors.schemas import (
    AssertionIn,
    ChallengeIn,
    ChallengeOut,
    FactorsOut,
    PasskeyCreatedOut,
    PasskeyIn,
    PasskeyOut,
    ReauthenticatedOut,
    ReauthenticateIn,
    RecoveryCodesOut,
    SecondFactorIn,
    TotpCodeIn,
    TotpEnrolmentOut,
    WebAuthnOptions,
)
from services.auth.factors.stepup import RecentClaims
from services.auth.limits import ip_limit
from services.auth.prefix import AUTH_PREFIX
from services.auth.responses import NoStore, session_response
from services.auth.schemas import TokenResponse
from services.auth.state import AuthDep, Client

router = APIRouter(prefix=AUTH_PREFIX, tags=["second factors"])


def passkey_out(row: PasskeyRow) -> PasskeyOut:
    return PasskeyOut(
        id=row.id,
        name=row.name,
        synced=row.backup_eligible,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


@router.get("/factors", response_model=FactorsOut, summary="The caller's second factors")
async def list_factors(claims: Claims, db: TenantSession) -> FactorsOut:
    found = await service.overview(db, claims)
    return FactorsOut(
        totp_enabled=found.enrolled.totp,
        passkeys=[passkey_out(row) for row in found.passkeys],
        recovery_codes_remaining=found.enrolled.recovery_codes,
        org_requires_second_factor=found.org_requires_second_factor,
    )


@router.post(
    "/factors/totp",
    response_model=TotpEnrolmentOut,
    summary="Start enrolling an authenticator app (recent authentication)",
    dependencies=[NoStore],
)
async def begin_totp(
    claims: RecentClaims, db: TenantSession, state: AuthDep, client: Client
) -> TotpEnrolmentOut:
    enrolment = await service.begin_totp(db, state, claims, client)
    return TotpEnrolmentOut(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post(
    "/factors/totp/enable",
    response_model=RecoveryCodesOut,
    summary="Confirm the authenticator app with a code; the first recovery codes (recent authentication)",
    dependencies=[NoStore],
)
async def enable_totp(
    body: TotpCodeIn,
    claims: RecentClaims,
    db: TenantSession,
    state: AuthDep,
    client: Client,
) -> RecoveryCodesOut:
    codes = await service.enable_totp(db, state, claims, body.code, client)
    return RecoveryCodesOut(recovery_codes=codes)


@router.delete(
    "/factors/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove the authenticator app (recent authentication)",
)
async def disable_totp(claims: RecentClaims, db: TenantSession, state: AuthDep, client: Client) -> Response:
    await service.disable_totp(db, state, claims, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/factors/recovery-codes",
    response_model=RecoveryCodesOut,
    summary="A new set of recovery codes; the old set stops working (recent authentication)",
    dependencies=[NoStore],
)
async def regenerate_recovery_codes(
    claims: RecentClaims, db: TenantSession, client: Client
) -> RecoveryCodesOut:
    codes = await service.regenerate_recovery_codes(db, claims, client)
    return RecoveryCodesOut(recovery_codes=codes)


@router.post(
    "/factors/passkeys/options",
    response_model=WebAuthnOptions,
    summary="PublicKeyCredentialCreationOptions for a new passkey (recent authentication)",
    # Each call writes a ceremony to Redis: bounded like the unauthenticated options route.
    dependencies=[ip_limit("passkey_registration_options")],
)
async def passkey_registration_options(
    claims: RecentClaims, db: TenantSession, state: AuthDep
) -> dict[str, Any]:
    return await service.passkey_registration_options(db, state, claims)


@router.post(
    "/factors/passkeys",
    status_code=status.HTTP_201_CREATED,
    response_model=PasskeyCreatedOut,
    summary="Register a passkey from the options' ceremony (recent authentication)",
    dependencies=[NoStore],
)
async def register_passkey(
    body: PasskeyIn,
    claims: RecentClaims,
    db: TenantSession,
    state: AuthDep,
    client: Client,
) -> PasskeyCreatedOut:
    registered = await service.register_passkey(
        db, state, claims, name=body.name, credential=body.credential, client=client
    )
    return PasskeyCreatedOut(
        passkey=passkey_out(registered.passkey), recovery_codes=registered.recovery_codes
    )


@router.delete(
    "/factors/passkeys/{passkey_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a passkey (recent authentication)",
)
async def remove_passkey(
    passkey_id: UUID, claims: RecentClaims, db: TenantSession, state: AuthDep, client: Client
) -> Response:
    await service.remove_passkey(db, state, claims, passkey_id, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/second-factor",
    response_model=TokenResponse,
    summary="Finish a sign-in challenge with a TOTP code, a recovery code or a passkey assertion",
    dependencies=[ip_limit("second_factor")],
)
async def second_factor(
    body: SecondFactorIn, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    issued = await signin.finish(
        state,
        request,
        token=body.challenge,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
        credential=body.webauthn,
        client=client,
    )
    return session_response(state, response, issued)


@router.post(
    "/second-factor/challenge",
    response_model=ChallengeOut,
    summary="What a sign-in challenge accepts (methods, WebAuthn options), from its token alone",
    # The same window as finishing the challenge: both take its token.
    dependencies=[ip_limit("second_factor"), NoStore],
)
async def describe_challenge(body: ChallengeIn, state: AuthDep) -> ChallengeOut:
    pending = await signin.describe(state, body.challenge)
    return ChallengeOut(
        second_factor_required=True,
        challenge=pending.challenge,
        methods=pending.methods,
        expires_in=pending.expires_in,
        webauthn=pending.webauthn,
    )


@router.post(
    "/passkeys/options",
    response_model=WebAuthnOptions,
    summary="PublicKeyCredentialRequestOptions for a passwordless sign-in (discoverable passkey)",
    dependencies=[ip_limit("passkey_options")],
)
async def passkey_options(state: AuthDep) -> dict[str, Any]:
    return await signin.passkey_options(state)


@router.post(
    "/passkeys/authenticate",
    response_model=TokenResponse,
    summary="Sign in with a passkey alone (user verification required)",
    dependencies=[ip_limit("passkey_authenticate")],
)
async def passkey_authenticate(
    body: AssertionIn, state: AuthDep, client: Client, response: Response
) -> TokenResponse:
    issued = await signin.sign_in_with_passkey(state, body.credential, client)
    return session_response(state, response, issued)


@router.post(
    "/reauthenticate/options",
    response_model=WebAuthnOptions,
    summary="PublicKeyCredentialRequestOptions for reauthenticating with a passkey",
    # Each call writes a ceremony to Redis: bounded like the unauthenticated options route.
    dependencies=[ip_limit("reauthenticate_options")],
)
async def reauthenticate_options(state: AuthDep, claims: Claims) -> dict[str, Any]:
    return await signin.passkey_options(state, signin.REAUTHENTICATE)


@router.post(
    "/reauthenticate",
    response_model=ReauthenticatedOut,
    summary=(
        "Prove it is you again (a second factor when enrolled: TOTP, passkey or recovery code;"
        " else the password): a fresh access token for step-up"
    ),
    dependencies=[NoStore],
)
async def reauthenticate(
    body: ReauthenticateIn, state: AuthDep, claims: Claims, client: Client, request: Request
) -> ReauthenticatedOut:
    access = await signin.reauthenticate(
        state,
        request,
        claims,
        password=body.password,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
        credential=body.webauthn,
        client=client,
    )
    return ReauthenticatedOut(access_token=access, expires_in=state.settings.access_token_ttl_seconds)
