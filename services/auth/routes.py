"""The HTTP routes of the auth service (`/api/v1/auth`). Thin: rules live in the modules."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, Security, status
from fastapi.security import APIKeyCookie

from services.auth.accounts import service as accounts
from services.auth.accounts.service import Issued
from services.auth.deps import (
    COOKIE_PATH,
    REFRESH_COOKIE,
    SECURE_REFRESH_COOKIE,
    AuthDep,
    Client,
    CurrentUser,
    Mailer,
    SameOrigin,
    refresh_cookie_name,
)
from services.auth.identities.service import Identity
from services.auth.invitations import service as invitations
from services.auth.limits import enforce, enforce_ip
from services.auth.schemas import (
    JWKS,
    AcceptInvitationRequest,
    EmailRequest,
    LoginRequest,
    OpenIDConfiguration,
    OrgOut,
    PasswordResetRequest,
    RegisterRequest,
    SessionList,
    SessionOut,
    StatusResponse,
    TokenRequest,
    TokenResponse,
    VerifyEmailRequest,
)
from services.auth.sessions import service as sessions
from services.auth.signups import service as signups
from services.auth.state import AuthState
from shared.access_tokens import ALGORITHM, REQUIRED_CLAIMS
from shared.openapi import REFRESH_COOKIE_AUTH
from shared.user_schema import public_user

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
# A security dependency (not a plain Cookie parameter) so the documents declare the cookie scheme.
_DOCUMENTED_COOKIE = APIKeyCookie(
    name=REFRESH_COOKIE,
    scheme_name=REFRESH_COOKIE_AUTH,
    auto_error=False,
    description=(
        "The httpOnly refresh cookie set by login, refresh and the verification endpoints"
        f" (named `{SECURE_REFRESH_COOKIE}` whenever it is Secure, i.e. outside plain-HTTP development)."
    ),
)


async def presented_refresh_token(
    request: Request, state: AuthDep, _documented: str | None = Security(_DOCUMENTED_COOKIE)
) -> str | None:
    """The refresh token from this deployment's cookie name (a `bb_refresh` planted by a sibling
    subdomain is not read when the cookie is `__Secure-`)."""
    return request.cookies.get(refresh_cookie_name(state.settings))


RefreshCookie = Depends(presented_refresh_token)
ACCEPTED = StatusResponse(status="accepted")


def set_refresh_cookie(response: Response, state: AuthState, token: str) -> None:
    response.set_cookie(
        refresh_cookie_name(state.settings),
        token,
        max_age=state.settings.refresh_token_ttl_seconds,
        path=COOKIE_PATH,
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def clear_refresh_cookie(response: Response, state: AuthState) -> None:
    response.delete_cookie(
        refresh_cookie_name(state.settings),
        path=COOKIE_PATH,
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def token_body(state: AuthState, identity: Identity, access_token: str) -> TokenResponse:
    user = identity.user
    return TokenResponse(
        user=public_user(user.id, user),
        org=OrgOut(id=user.org_id, name=identity.org_name),
        access_token=access_token,
        expires_in=state.settings.access_token_ttl_seconds,
    )


def session_response(state: AuthState, response: Response, issued: Issued) -> TokenResponse:
    set_refresh_cookie(response, state, issued.refresh_token)
    response.headers["Cache-Control"] = "no-store"
    return token_body(state, issued.identity, issued.access_token)


@router.post("/register", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def register(body: RegisterRequest, state: AuthDep, client: Client, mailer: Mailer) -> StatusResponse:
    """Sign up: the same answer, in the same time, whether or not the address has an account."""
    await mailer.after_response(
        "register",
        body.email,
        lambda: signups.register(
            state,
            email=body.email,
            password=body.password,
            name=body.name,
            org_name=body.org_name,
            client=client,
        ),
    )
    return StatusResponse(status="verification_sent")


@router.post("/email/verify", response_model=TokenResponse)
async def verify_email(
    body: VerifyEmailRequest, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    """Activate the sign-up attempt of this link, with the password chosen in that attempt."""
    await enforce_ip(state, request, "email_verify", client, state.settings.ratelimit_auth_ip_per_minute)
    issued = await signups.verify_email(state, token=body.token, password=body.password, client=client)
    return session_response(state, response, issued)


@router.post("/email/verify-request", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def verify_request(body: EmailRequest, state: AuthDep, mailer: Mailer) -> StatusResponse:
    await mailer.after_response(
        "verify_request", body.email, lambda: signups.request_verification(state, email=body.email)
    )
    return ACCEPTED


@router.post("/login", response_model=TokenResponse)
async def login(
    body: LoginRequest, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    await enforce(state, request, "login", client, body.email)
    issued = await accounts.login(state, email=body.email, password=body.password, client=client)
    return session_response(state, response, issued)


@router.post("/refresh", response_model=TokenResponse, dependencies=[SameOrigin])
async def refresh(
    state: AuthDep, client: Client, request: Request, response: Response, token: str | None = RefreshCookie
) -> TokenResponse:
    await enforce_ip(state, request, "refresh", client, state.settings.ratelimit_auth_refresh_ip_per_minute)
    refreshed = await sessions.refresh(state, token, client)
    access = accounts.issue_access_token(state, refreshed.identity, refreshed.session_id)
    set_refresh_cookie(response, state, refreshed.refresh_token)
    response.headers["Cache-Control"] = "no-store"
    return token_body(state, refreshed.identity, access)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[SameOrigin],
)
async def logout(state: AuthDep, client: Client, token: str | None = RefreshCookie) -> Response:
    await sessions.logout(state, token, client)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_refresh_cookie(response, state)
    return response


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout_all(state: AuthDep, client: Client, claims: CurrentUser) -> Response:
    await sessions.logout_all(state, org_id=claims.org_id, user_id=claims.user_id, client=client)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_refresh_cookie(response, state)
    return response


@router.get("/sessions", response_model=SessionList)
async def list_sessions(state: AuthDep, claims: CurrentUser) -> SessionList:
    found = await sessions.list_sessions(state, org_id=claims.org_id, user_id=claims.user_id)
    return SessionList(
        items=[
            SessionOut(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                user_agent=s.user_agent,
                ip=s.ip,
                current=s.id == claims.session_id,
            )
            for s in found
        ]
    )


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke_session(session_id: UUID, state: AuthDep, client: Client, claims: CurrentUser) -> Response:
    await sessions.revoke_session(
        state, org_id=claims.org_id, user_id=claims.user_id, session_id=session_id, client=client
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/magic-link", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def magic_link(body: EmailRequest, state: AuthDep, mailer: Mailer) -> StatusResponse:
    await mailer.after_response(
        "magic_link", body.email, lambda: accounts.request_magic_link(state, email=body.email)
    )
    return ACCEPTED


@router.post("/magic-link/verify", response_model=TokenResponse)
async def magic_link_verify(
    body: TokenRequest, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    await enforce_ip(state, request, "magic_link_verify", client, state.settings.ratelimit_auth_ip_per_minute)
    issued = await accounts.verify_magic_link(state, token=body.token, client=client)
    return session_response(state, response, issued)


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED, response_model=StatusResponse)
async def password_forgot(body: EmailRequest, state: AuthDep, mailer: Mailer) -> StatusResponse:
    await mailer.after_response(
        "password_forgot", body.email, lambda: accounts.request_password_reset(state, email=body.email)
    )
    return ACCEPTED


@router.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def password_reset(
    body: PasswordResetRequest, state: AuthDep, client: Client, request: Request
) -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    await enforce_ip(state, request, "password_reset", client, state.settings.ratelimit_auth_ip_per_minute)
    await accounts.reset_password(state, token=body.token, password=body.password, client=client)
    clear_refresh_cookie(response, state)
    return response


@router.post("/invitations/accept", status_code=status.HTTP_201_CREATED, response_model=TokenResponse)
async def accept_invitation(
    body: AcceptInvitationRequest, state: AuthDep, client: Client, request: Request, response: Response
) -> TokenResponse:
    await enforce_ip(state, request, "invitation_accept", client, state.settings.ratelimit_auth_ip_per_minute)
    issued = await invitations.accept_invitation(
        state, token=body.token, name=body.name, password=body.password, client=client
    )
    return session_response(state, response, issued)


@router.get("/.well-known/jwks.json", response_model=JWKS)
async def jwks(state: AuthDep, response: Response) -> dict[str, list[dict[str, str]]]:
    response.headers["Cache-Control"] = "public, max-age=300"
    return state.keyring.jwks()


@router.get("/.well-known/openid-configuration", response_model=OpenIDConfiguration)
async def openid_configuration(state: AuthDep, response: Response) -> OpenIDConfiguration:
    """Discovery: JOSE/OIDC libraries given the issuer find the keys and algorithms here.

    URLs come from APP_BASE_URL (the one public origin), never from the request's Host header,
    so a forged Host cannot make a cached copy point clients at someone else's keys.
    """
    response.headers["Cache-Control"] = "public, max-age=300"
    origin = str(state.settings.app_base_url).rstrip("/")
    return OpenIDConfiguration(
        issuer=state.settings.jwt_issuer,
        jwks_uri=f"{origin}{router.prefix}/.well-known/jwks.json",
        # No ID tokens are issued; OIDC requires the field and libraries read the JWKS
        # algorithm from it, so it names the one algorithm every token here is signed with.
        id_token_signing_alg_values_supported=[ALGORITHM],
        # No OAuth token endpoint: clients do not authenticate to one.
        token_endpoint_auth_methods_supported=["none"],
        subject_types_supported=["public"],
        response_types_supported=[],
        claims_supported=list(REQUIRED_CLAIMS),
    )
