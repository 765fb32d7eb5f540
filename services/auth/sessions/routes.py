"""HTTP of sessions: refresh, logout, the caller's sessions. Rules in `sessions/service.py`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from services.auth.accounts.service import issue_access_token
from services.auth.deps import Claims, RefreshCookie, SameOrigin
from services.auth.limits import REFRESH_LIMIT
from services.auth.prefix import AUTH_PREFIX
from services.auth.responses import clear_refresh_cookie, token_response
from services.auth.schemas import SessionList, SessionOut, TokenResponse
from services.auth.sessions import service
from services.auth.state import AuthDep, Client

router = APIRouter(prefix=AUTH_PREFIX, tags=["auth"])


@router.post("/refresh", response_model=TokenResponse, dependencies=[SameOrigin, REFRESH_LIMIT])
async def refresh(
    state: AuthDep, client: Client, response: Response, token: str | None = RefreshCookie
) -> TokenResponse:
    refreshed = await service.refresh(state, token, client)
    access = issue_access_token(state, refreshed.identity, refreshed.session_id, refreshed.level)
    return token_response(state, response, refreshed.identity, access, refreshed.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[SameOrigin],
)
async def logout(state: AuthDep, client: Client, token: str | None = RefreshCookie) -> Response:
    await service.logout(state, token, client)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_refresh_cookie(response, state)
    return response


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def logout_all(state: AuthDep, client: Client, claims: Claims) -> Response:
    await service.logout_all(state, org_id=claims.org_id, user_id=claims.user_id, client=client)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_refresh_cookie(response, state)
    return response


@router.get("/sessions", response_model=SessionList)
async def list_sessions(state: AuthDep, claims: Claims) -> SessionList:
    found = await service.list_sessions(state, org_id=claims.org_id, user_id=claims.user_id)
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
async def revoke_session(session_id: UUID, state: AuthDep, client: Client, claims: Claims) -> Response:
    await service.revoke_session(
        state, org_id=claims.org_id, user_id=claims.user_id, session_id=session_id, client=client
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
