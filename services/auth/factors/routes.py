"""HTTP of second factors: managing them, finishing a sign-in with one, passkeys, step-up.

Rules in `factors/service.py` (managing) and `factors/signin.py` (signing in, reauthenticating).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from services.auth.deps import AuthDep, Client, CurrentUser
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
from services.auth.factors.stepup import RecentUser
from services.auth.limits import enforce_ip
from services.auth.prefix import AUTH_PREFIX
from services.auth.responses import session_response
from services.auth.schemas import TokenResponse

router = APIRouter(prefix=AUTH_PREFIX, tags=["second factors"])

NO_STORE = {"Cache-Control": "no-store"}


def passkey_out(row: PasskeyRow) -> PasskeyOut:
    return PasskeyOut(
        id=row.id,
        name=row.name,
        synced=row.backup_eligible,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


@router.get("/factors", response_model=FactorsOut, summary="The caller's second factors")
async def list_factors(state: AuthDep, claims: CurrentUser) -> FactorsOut:
    found = await service.overview(state, claims)
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
)
async def begin_totp(
    state: AuthDep, claims: RecentUser, client: Client, response: Response
) -> TotpEnrolmentOut:
    enrolment = await service.begin_totp(state, claims, client)
    response.headers.update(NO_STORE)
    return TotpEnrolmentOut(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post(
    "/factors/totp/enable",
    response_model=RecoveryCodesOut,
    summary="Confirm the authenticator app with a code; the first recovery codes (recent authentication)",
)
async def enable_totp(
    body: TotpCodeIn, state: AuthDep, claims: RecentUser, client: Client, response: Response
) -> RecoveryCodesOut:
    codes = await service.enable_totp(state, claims, body.code, client)
    response.headers.update(NO_STORE)
    return RecoveryCodesOut(recovery_codes=codes)


@router.delete(
    "/factors/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove the authenticator app (recent authentication)",
)
async def disable_totp(state: AuthDep, claims: RecentUser, client: Client) -> Response:
    await service.disable_totp(state, claims, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/factors/recovery-codes",
    response_model=RecoveryCodesOut,
    summary="A new set of recovery codes; the old set stops working (recent authentication)",
)
async def regenerate_recovery_codes(
    state: AuthDep, claims: RecentUser, client: Client, response: Response
) -> RecoveryCodesOut:
    codes = await service.regenerate_recovery_codes(state, claims, client)
    response.headers.update(NO_STORE)
    return RecoveryCodesOut(recovery_codes=codes)


@router.post(
    "/factors/passkeys/options",
    response_model=WebAuthnOptions,
    summary="PublicKeyCredentialCreationOptions for a new passkey (recent authentication)",
)
async def passkey_registration_options(
    state: AuthDep, claims: RecentUser, client: Client, request: Request
) -> dict[str, Any]:
    # Each call writes a ceremony to Redis: bounded like the unauthenticated options route.
    limit = state.settings.ratelimit_auth_ip_per_minute
    await enforce_ip(state, request, "passkey_registration_options", client, limit)
    return await service.passkey_registration_options(state, claims)


@router.post(
    "/factors/passkeys",
    status_code=status.HTTP_201_CREATED,
    response_model=PasskeyCreatedOut,
    summary="Register a passkey from the options' ceremony (recent authentication)",
)
async def register_passkey(
    body: PasskeyIn, state: AuthDep, claims: RecentUser, client: Client, response: Response
) -> PasskeyCreatedOut:
    registered = await service.register_passkey(
        state, claims, name=body.name, credential=body.credential, client=client
    )
    response.headers.update(NO_STORE)
    return PasskeyCreatedOut(
        passkey=passkey_out(registered.passkey), recovery_codes=registered.recovery_codes
    )


@router.delete(
    "/factors/passkeys/{passkey_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a passkey (recent authentication)",
)
async def remove_passkey(passkey_id: UUID, state: AuthDep, claims: RecentUser, client: Client) -> Response:
    await service.remove_passkey(state, claims, passkey_id, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/second-factor",
    response_model=TokenResponse,
    summary="Finish a sign-in challenge with a TOTP code, a recovery code or a passkey assertion",
)
async def second_factor(
    body: SecondFactorIn, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    await enforce_ip(state, request, "second_factor", client, state.settings.ratelimit_auth_ip_per_minute)
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
)
async def describe_challenge(
    body: ChallengeIn, state: AuthDep, client: Client, request: Request, response: Response
) -> ChallengeOut:
    await enforce_ip(state, request, "second_factor", client, state.settings.ratelimit_auth_ip_per_minute)
    pending = await signin.describe(state, body.challenge)
    response.headers.update(NO_STORE)
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
)
async def passkey_options(state: AuthDep, client: Client, request: Request) -> dict[str, Any]:
    await enforce_ip(state, request, "passkey_options", client, state.settings.ratelimit_auth_ip_per_minute)
    return await signin.passkey_options(state)


@router.post(
    "/passkeys/authenticate",
    response_model=TokenResponse,
    summary="Sign in with a passkey alone (user verification required)",
)
async def passkey_authenticate(
    body: AssertionIn, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    await enforce_ip(
        state, request, "passkey_authenticate", client, state.settings.ratelimit_auth_ip_per_minute
    )
    issued = await signin.sign_in_with_passkey(state, body.credential, client)
    return session_response(state, response, issued)


@router.post(
    "/reauthenticate/options",
    response_model=WebAuthnOptions,
    summary="PublicKeyCredentialRequestOptions for reauthenticating with a passkey",
)
async def reauthenticate_options(
    state: AuthDep, claims: CurrentUser, client: Client, request: Request
) -> dict[str, Any]:
    # Each call writes a ceremony to Redis: bounded like the unauthenticated options route.
    limit = state.settings.ratelimit_auth_ip_per_minute
    await enforce_ip(state, request, "reauthenticate_options", client, limit)
    return await signin.passkey_options(state, signin.REAUTHENTICATE)


@router.post(
    "/reauthenticate",
    response_model=ReauthenticatedOut,
    summary=(
        "Prove it is you again (a second factor when enrolled: TOTP, passkey or recovery code;"
        " else the password): a fresh access token for step-up"
    ),
)
async def reauthenticate(
    body: ReauthenticateIn,
    state: AuthDep,
    claims: CurrentUser,
    client: Client,
    request: Request,
    response: Response,
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
    response.headers.update(NO_STORE)
    return ReauthenticatedOut(access_token=access, expires_in=state.settings.access_token_ttl_seconds)
