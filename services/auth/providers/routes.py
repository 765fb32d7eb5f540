"""HTTP of external providers: the list, the start (302 to the provider), the callback (refresh
cookie, then 302 to a page of the web app), and the caller's identities. Rules in `service.py`."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import RedirectResponse

from services.auth.deps import Claims, TenantSession
from services.auth.limits import ip_limit
from services.auth.prefix import AUTH_PREFIX
from services.auth.providers import service
from services.auth.providers.protocol import Provider, ProviderFailure, Providers
from services.auth.providers.schemas import (
    AuthorizationOut,
    IdentityList,
    IdentityOut,
    ProviderList,
    ProviderOut,
    ProviderStartRequest,
)
from services.auth.responses import set_refresh_cookie
from services.auth.state import AuthDep, AuthState, Client
from shared.errors import ServiceUnavailable, UnknownProvider

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])

# The browser half of an attempt: sent back only to the callbacks, only on a top-level GET
# from the provider (Lax), never readable by scripts.
ATTEMPT_COOKIE = "bb_provider_attempt"
SECURE_ATTEMPT_COOKIE = "__Secure-" + ATTEMPT_COOKIE
ATTEMPT_COOKIE_PATH = f"{AUTH_PREFIX}/providers"
UNAVAILABLE = "The sign-in provider cannot be reached; try again later."


def get_providers(request: Request) -> Providers:
    """The configured providers (built with the app)."""
    providers: Providers = request.app.state.providers
    return providers


ProvidersDep = Annotated[Providers, Depends(get_providers)]


def get_provider(provider: str, providers: ProvidersDep) -> Provider:
    """The provider named in the path; 404 when AUTH_PROVIDERS does not configure it."""
    found = providers.get(provider)
    if found is None:
        raise UnknownProvider()
    return found


ProviderDep = Annotated[Provider, Depends(get_provider)]


def _attempt_cookie_name(state: AuthState) -> str:
    return SECURE_ATTEMPT_COOKIE if state.settings.cookie_secure else ATTEMPT_COOKIE


def _set_attempt_cookie(response: Response, state: AuthState, value: str) -> None:
    response.set_cookie(
        _attempt_cookie_name(state),
        value,
        max_age=state.settings.auth_provider_attempt_ttl_seconds,
        path=ATTEMPT_COOKIE_PATH,
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def _page(state: AuthState, path: str, **fragment: str) -> str:
    """A page of the web app, with what it must show in the fragment (never sent to servers)."""
    base = str(state.settings.app_base_url).rstrip("/")
    return f"{base}{path}" + (f"#{urlencode(fragment)}" if fragment else "")


async def _begin(state: AuthState, started: service.Started, response: Response) -> None:
    _set_attempt_cookie(response, state, started.browser_binding)
    response.headers["Cache-Control"] = "no-store"


def _unavailable(failure: ProviderFailure) -> ServiceUnavailable:
    return ServiceUnavailable(UNAVAILABLE, headers={"Retry-After": "30"}, extra={"reason": failure.reason})


@router.get("/providers", response_model=ProviderList)
async def list_providers(providers: ProvidersDep) -> ProviderList:
    """The providers people may sign in with (AUTH_PROVIDERS), for the "Continue with …" buttons."""
    return ProviderList(items=[ProviderOut(id=p.key, name=p.name) for p in providers.all()])


@router.get(
    "/providers/{provider}/start",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={
        302: {
            "description": "To the provider's authorization endpoint (or to the sign-in page with an error)"
        }
    },
    dependencies=[ip_limit("provider_start")],
)
async def start_provider_sign_in(state: AuthDep, provider: ProviderDep) -> RedirectResponse:
    """Sign in, or sign up, with a provider: a 302 to its authorization endpoint (authorization
    code with PKCE S256, `state`, `nonce`), setting the attempt cookie that binds the attempt to
    this browser (HttpOnly, SameSite=Lax, `Path=/api/v1/auth/providers`, Secure with
    COOKIE_SECURE). A provider that cannot be reached sends the browser to
    `/auth/sign-in#error=provider_unavailable&provider=<id>` instead."""
    try:
        started = await service.start(state, provider)
    except ProviderFailure as failure:
        return RedirectResponse(
            _page(state, "/auth/sign-in", error=failure.reason, provider=provider.key), status.HTTP_302_FOUND
        )
    response = RedirectResponse(started.authorization_url, status.HTTP_302_FOUND)
    await _begin(state, started, response)
    return response


@router.post(
    "/providers/{provider}/start", response_model=AuthorizationOut, dependencies=[ip_limit("provider_start")]
)
async def start_provider_invitation(
    body: ProviderStartRequest, state: AuthDep, response: Response, provider: ProviderDep
) -> AuthorizationOut:
    """Accept an invitation with a provider: the page POSTs the invitation's token (kept out of
    URLs) and sends the browser to `authorization_url`."""
    try:
        started = await service.start_invitation(state, provider, body.invitation_token)
    except ProviderFailure as failure:
        raise _unavailable(failure) from None
    await _begin(state, started, response)
    return AuthorizationOut(authorization_url=started.authorization_url)


@router.post("/providers/{provider}/link", response_model=AuthorizationOut)
async def start_provider_link(
    state: AuthDep, claims: Claims, response: Response, provider: ProviderDep
) -> AuthorizationOut:
    """Link a provider to the caller's account (sign-in within the last 10 minutes, else 403
    `reauthentication-required`); the page sends the browser to `authorization_url`."""
    try:
        started = await service.start_link(state, provider, claims)
    except ProviderFailure as failure:
        raise _unavailable(failure) from None
    await _begin(state, started, response)
    return AuthorizationOut(authorization_url=started.authorization_url)


@router.get(
    "/providers/{provider}/callback",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={302: {"description": "To /account (signed in or linked) or to a page naming the error"}},
    dependencies=[ip_limit("provider_callback")],
)
async def provider_callback(
    state: AuthDep, client: Client, request: Request, provider: ProviderDep
) -> RedirectResponse:
    """Where the provider sends the browser back (the redirect URI to register:
    `APP_BASE_URL/api/v1/auth/providers/<id>/callback`). A sign-in sets the refresh cookie and
    redirects to `/account` (the page restores the session with `POST /refresh`); for an account
    with a second factor, no cookie: `/auth/second-factor#challenge=<challenge>&provider=<id>`; a
    link redirects to `/account#linked=<id>`. Anything else redirects, without a session, to
    `/auth/sign-in#error=<reason>&provider=<id>` (`/account#error=…` when linking): `state_missing`,
    `state_mismatch`, `expired` (unknown, used or timed-out attempt), `denied`, `provider_error`,
    `provider_unavailable`, `issuer_mismatch`, `invalid_id_token`, `invalid_response`,
    `email_unverified`, `account_exists` (the verified address has an account: sign in the usual
    way and link from the account page), `invitation_invalid`, `invitation_email_mismatch`,
    `sign_in_refused`, `session_ended`, `identity_linked_elsewhere`, `provider_already_linked`."""
    params = {k: v for k, v in request.query_params.items() if k in ("state", "code", "error", "iss")}
    outcome = await service.callback(
        state,
        provider,
        params=params,
        browser_binding=request.cookies.get(_attempt_cookie_name(state)),
        client=client,
    )
    linking = outcome.intent is service.Intent.LINK
    if outcome.failure is not None:
        page = "/account" if linking else "/auth/sign-in"
        target = _page(state, page, error=outcome.failure, provider=provider.key)
    elif linking:
        target = _page(state, "/account", linked=provider.key)
    elif outcome.pending is not None:
        # A second factor finishes it: the page reads the challenge (POST /second-factor/challenge).
        target = _page(
            state, "/auth/second-factor", challenge=outcome.pending.challenge, provider=provider.key
        )
    else:
        target = _page(state, "/account")
    response = RedirectResponse(target, status.HTTP_302_FOUND)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(
        _attempt_cookie_name(state),
        path=ATTEMPT_COOKIE_PATH,
        secure=state.settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    if outcome.issued is not None:
        set_refresh_cookie(response, state, outcome.issued.refresh_token)
    return response


@router.get("/identities", response_model=IdentityList)
async def list_identities(claims: Claims, db: TenantSession, providers: ProvidersDep) -> IdentityList:
    """The caller's linked provider identities, oldest first."""
    found = await service.list_identities(db, claims)
    return IdentityList(
        items=[
            IdentityOut(
                id=i.id,
                provider=i.provider,
                provider_name=p.name if (p := providers.get(i.provider)) else i.provider,
                email=i.email,
                created_at=i.created_at,
                last_used_at=i.last_used_at,
            )
            for i in found
        ]
    )


@router.delete("/identities/{identity_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def unlink_identity(identity_id: UUID, claims: Claims, db: TenantSession, client: Client) -> Response:
    """Unlink one of the caller's identities; 409 `last-sign-in-method` when the account would
    be left with no way to sign in (no password and no other identity)."""
    await service.unlink(db, claims, identity_id, client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
