"""HTTP of API keys: /api-keys. The rules are in `api_keys/service.py`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.api.api_keys import service
from services.api.api_keys.queries import ApiKeyRow
from services.api.api_keys.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut
from services.api.deps import ApiDep, CurrentUser, TenantSession
from services.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.api.prefix import API_PREFIX
from services.api.stepup import RecentUser
from shared.settings import Settings

router = APIRouter(prefix=API_PREFIX, tags=["api-keys"])


def key_out(settings: Settings, row: ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=service.prefix(settings, row),
        scopes=row.scopes,
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        expired=row.expired,
        revoked=row.revoked_at is not None,
        revoked_at=row.revoked_at,
    )


@router.post(
    "/api-keys", status_code=201, summary="Create an API key, shown once (owner/admin; recent authentication)"
)
async def create_api_key(
    body: ApiKeyIn, me: RecentUser, session: TenantSession, state: ApiDep, response: Response
) -> ApiKeyCreated:
    created = await service.create(
        session,
        me,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        settings=state.settings,
    )
    response.headers["Cache-Control"] = "no-store"
    shown = key_out(state.settings, created.row)
    return ApiKeyCreated(**shown.model_dump(), key=created.token)


@router.get("/api-keys", summary="The organization's API keys, newest first (owner/admin)")
async def list_api_keys(
    me: CurrentUser,
    session: TenantSession,
    state: ApiDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ApiKeyOut]:
    rows, next_cursor = await service.list_keys(session, me, limit=limit, cursor=cursor)
    return Page[ApiKeyOut](items=[key_out(state.settings, row) for row in rows], next_cursor=next_cursor)


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key at once (owner/admin)")
async def revoke_api_key(key_id: UUID, me: CurrentUser, session: TenantSession) -> Response:
    await service.revoke(session, me, key_id)
    return Response(status_code=204)
