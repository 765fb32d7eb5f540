"""FastAPI dependencies of the auth routes: the service state, the caller, the bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import BackgroundTasks, Depends, Request, Security
from fastapi.security import APIKeyCookie
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.deferred import after_response
from services.auth.limits import MailBudget, enforce, mail_budget
from services.auth.prefix import AUTH_PREFIX
from services.auth.state import AuthDep, AuthState, Client, ClientInfo
from shared.access_tokens import AccessClaims, is_session_revoked, verify_access_token
from shared.api_keys import is_api_key
from shared.bearer import bearer_token
from shared.db import transaction
from shared.errors import Forbidden, Unauthorized
from shared.openapi import BEARER_AUTH, REFRESH_COOKIE_AUTH, requires_security
from shared.redis_errors import redis_or_503
from shared.settings import Settings

REFRESH_COOKIE = "bb_refresh"
# Browsers accept a `__Secure-` cookie only from a secure origin with the Secure flag, so a
# sibling subdomain (or a plain-HTTP response) cannot plant one that shadows ours.
SECURE_REFRESH_COOKIE = "__Secure-" + REFRESH_COOKIE
COOKIE_PATH = AUTH_PREFIX
CROSS_ORIGIN_DETAIL = "This request must come from the application's own origin."


class AddressWork(Protocol):
    """What a mailing endpoint does for the address (look it up, write a token or an attempt,
    queue a mail).

    It is handed the address that was rate-limited and that address's mail budget, so a route
    cannot count one address and mail another; it takes a mail from the budget right before
    queuing one, and does everything else (an attempt is recorded) whatever the budget says."""

    def __call__(self, state: AuthState, *, email: str, mail: MailBudget) -> Awaitable[None]: ...


@dataclass(frozen=True)
class MailingRequest:
    """A request to an endpoint that mails an address (register, verify-request, magic-link,
    password/forgot): all of them answer 202 alike, whatever the address."""

    state: AuthState
    request: Request
    client: ClientInfo
    background: BackgroundTasks

    async def after_response(self, endpoint: str, email: str, work: AddressWork) -> None:
        """Check the caller's windows (429/503 when refused), then run `work` for that same
        address, with its mail budget for this caller's network, once the response has been sent.
        """
        await enforce(self.state, self.request, endpoint, self.client, email)
        budget = mail_budget(self.state, email, self.client)
        after_response(self.background, endpoint, lambda: work(self.state, email=email, mail=budget))


async def get_mailer(
    request: Request, state: AuthDep, client: Client, background: BackgroundTasks
) -> MailingRequest:
    """The mailing endpoint's request, its limits and its after-response work."""
    return MailingRequest(state, request, client, background)


Mailer = Annotated[MailingRequest, Depends(get_mailer)]


@requires_security(BEARER_AUTH)
async def get_current_claims(request: Request, state: AuthDep) -> AccessClaims:
    """The verified bearer token of a live session (revocation checked in Redis, fail closed)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("A bearer access token is required.")
    if is_api_key(token):
        # Keys act for an org, never as a person: sessions and logout are not theirs.
        raise Unauthorized("API keys are not accepted by the auth endpoints; use an access token.")
    claims = verify_access_token(token, state.keyring.public_keys, state.settings)
    with redis_or_503():
        revoked = await is_session_revoked(state.redis, state.settings, claims.session_id)
    if revoked:
        raise Unauthorized("The session has been revoked.")
    return claims


Claims = Annotated[AccessClaims, Depends(get_current_claims)]


async def tenant_session(state: AuthDep, claims: Claims) -> AsyncIterator[AsyncSession]:
    """The request's transaction, bound to the signed-in caller's org (as the api's)."""
    async with transaction(state.sessionmaker, claims.org_id) as session:
        yield session


# scope="function": committed when the handler returns, before the response is sent (recovery
# codes are shown only once they are stored).
TenantSession = Annotated[AsyncSession, Depends(tenant_session, scope="function")]


def allowed_origins(state: AuthState) -> frozenset[str]:
    """The web origins that may use the refresh cookie: APP_BASE_URL's and CORS_ORIGINS."""
    base = state.settings.app_base_url
    default_port = {"http": 80, "https": 443}.get(base.scheme)
    port = "" if base.port in (None, default_port) else f":{base.port}"
    origin = f"{base.scheme}://{base.host}{port}"
    explicit = {o.lower() for o in state.settings.cors_origins if o != "*"}
    return frozenset({origin.lower(), *explicit})


async def require_same_origin(request: Request, state: AuthDep) -> None:
    """CSRF defence in depth for the cookie-authenticated endpoints (/refresh, /logout).

    SameSite=Strict already keeps the cookie off cross-site requests; this also refuses
    same-site but cross-origin pages (a sibling subdomain) and browsers without SameSite.
    Browsers send `Origin` on every POST; a request without it (curl, a server) is not a
    browser riding on a victim's cookie and is let through.
    """
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise Forbidden(CROSS_ORIGIN_DETAIL)
    origin = request.headers.get("origin")
    if origin is None:
        return
    if origin.lower().rstrip("/") not in allowed_origins(state):
        raise Forbidden(CROSS_ORIGIN_DETAIL)


SameOrigin = Depends(require_same_origin)


def refresh_cookie_name(settings: Settings) -> str:
    """`__Secure-bb_refresh` whenever the cookie is Secure; `bb_refresh` over plain-HTTP development."""
    return SECURE_REFRESH_COOKIE if settings.cookie_secure else REFRESH_COOKIE


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
