"""Invitations: create (and email), list, revoke. Accepting is the auth service's route.

The invitation link carries a one-time token in its fragment: 32 random bytes, unpadded
base64url; only their SHA-256 is stored (`one_time_tokens`, purpose 'invitation'), the same
scheme the auth service consumes. A 409 is given when a pending invitation exists or the address
is already a member of THIS org; an address that belongs to another org is invisible here (RLS)
and gets an invitation like any other, so the api never reveals other tenants' members.
"""

# SQL here is assembled from this module's constant fragments only; values are bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.api import audit
from services.api.deps import CurrentUser, TenantSession
from services.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_time_id_cursor,
    encode_cursor,
    split_page,
)
from services.api.routes import API_PREFIX
from services.api.routes.common import lock_org
from services.api.schemas import InvitationIn, InvitationOut
from shared.access_tokens import b64url_encode
from shared.email_queue import EmailTemplate, enqueue_email
from shared.errors import Conflict, Forbidden, NotFound
from shared.resources import ResourcesDep

router = APIRouter(prefix=API_PREFIX, tags=["invitations"])

INVITATION_COLUMNS = (
    "id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at,"
    " (expires_at <= now()) AS expired"
)
PENDING = "accepted_at IS NULL AND revoked_at IS NULL"


def new_token() -> tuple[str, bytes]:
    """A one-time token for the link and the SHA-256 digest that is stored."""
    raw = secrets.token_bytes(32)
    return b64url_encode(raw), hashlib.sha256(raw).digest()


def invitation_out(row: Any) -> InvitationOut:
    if row.accepted_at is not None:
        status = "accepted"
    elif row.revoked_at is not None:
        status = "revoked"
    elif row.expired:
        status = "expired"
    else:
        status = "pending"
    return InvitationOut(
        id=row.id, email=row.email, role=row.role, status=status, invited_by=row.invited_by,
        created_at=row.created_at, expires_at=row.expires_at, accepted_at=row.accepted_at,
        revoked_at=row.revoked_at,
    )


@router.post("/invitations", status_code=201, summary="Invite someone by email (owner/admin)")
async def create_invitation(
    body: InvitationIn,
    me: CurrentUser,
    session: TenantSession,
    request: Request,
    resources: ResourcesDep,
) -> InvitationOut:
    me.require_manager()
    me = await lock_org(session, me)  # serialized with role changes: the role as of now
    me.require_manager()
    if body.role == "owner" and me.role != "owner":
        raise Forbidden("Only an owner can invite an owner.")
    email = str(body.email)
    params = {"email": email}
    member = (
        await session.execute(text("SELECT 1 FROM users WHERE lower(email) = lower(:email)"), params)
    ).first()
    if member is not None:
        raise Conflict("This address is already a member of the organization.")
    # An expired, never-answered invitation no longer blocks a new one.
    expired = (
        await session.execute(
            text(
                f"UPDATE invitations SET revoked_at = now() WHERE lower(email) = lower(:email)"
                f" AND {PENDING} AND expires_at <= now() RETURNING id"
            ),
            params,
        )
    ).scalars().all()
    for invitation_id in expired:
        await audit.record(
            session, request, me, "invitation.revoked", target_type="invitation",
            target_id=invitation_id, details={"reason": "expired_superseded"},
        )
    ttl = resources.settings.invitation_ttl_seconds
    try:
        async with session.begin_nested():
            row = (
                await session.execute(
                    text(
                        "INSERT INTO invitations (org_id, email, role, invited_by, expires_at)"
                        " VALUES (:org, :email, :role, :by, now() + make_interval(secs => :ttl))"
                        f" RETURNING {INVITATION_COLUMNS}"
                    ),
                    {"org": me.org_id, "email": email, "role": body.role, "by": me.user_id, "ttl": ttl},
                )
            ).one()
    except IntegrityError:
        raise Conflict("A pending invitation for this address already exists.") from None
    token, digest = new_token()
    await session.execute(
        text(
            "INSERT INTO one_time_tokens (org_id, invitation_id, purpose, token_hash, expires_at)"
            " VALUES (:org, :inv, 'invitation', :hash, :expires)"
        ),
        {"org": me.org_id, "inv": row.id, "hash": digest, "expires": row.expires_at},
    )
    await audit.record(
        session, request, me, "invitation.created", target_type="invitation", target_id=row.id,
        details={"email": email, "role": body.role},
    )
    base = str(resources.settings.app_base_url).rstrip("/")
    # Enqueued before the commit: if Redis refuses, the whole invitation is rolled back (503).
    await enqueue_email(
        resources.redis, resources.settings, template=EmailTemplate.INVITATION, to=email,
        context={
            "link": f"{base}/auth/accept-invitation#token={token}",
            "expires_in_seconds": ttl,
            "org_name": me.org_name,
            "inviter_name": me.name,
            "role": body.role,
        },
    )
    return invitation_out(row)


@router.get("/invitations", summary="The organization's invitations, newest first (owner/admin)")
async def list_invitations(
    me: CurrentUser, session: TenantSession, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[InvitationOut]:
    me.require_manager()
    params: dict[str, object] = {"limit": limit + 1}
    where = ""
    if cursor is not None:
        params["ts"], params["id"] = decode_time_id_cursor(cursor)
        where = "WHERE (created_at, id) < (:ts, :id)"
    rows = (
        await session.execute(
            text(
                f"SELECT {INVITATION_COLUMNS} FROM invitations {where}"
                " ORDER BY created_at DESC, id DESC LIMIT :limit"
            ),
            params,
        )
    ).all()
    page, more = split_page(rows, limit)
    next_cursor = encode_cursor(page[-1].created_at.isoformat(), page[-1].id) if more else None
    return Page[InvitationOut](items=[invitation_out(r) for r in page], next_cursor=next_cursor)


@router.delete("/invitations/{invitation_id}", status_code=204, summary="Revoke an invitation")
async def revoke_invitation(
    invitation_id: UUID, me: CurrentUser, session: TenantSession, request: Request
) -> Response:
    # Locks in the order the auth service's acceptance takes them (token rows, then the
    # invitation), after the org lock that serializes role changes: no lock cycle. The token is
    # spent first; any refusal below rolls the whole transaction back.
    me = await lock_org(session, me)
    await session.execute(
        text(
            "UPDATE one_time_tokens SET consumed_at = now()"
            " WHERE invitation_id = :id AND consumed_at IS NULL"
        ),
        {"id": invitation_id},
    )
    row = (
        await session.execute(
            text(f"SELECT {INVITATION_COLUMNS} FROM invitations WHERE id = :id FOR UPDATE"),
            {"id": invitation_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such invitation.")
    me.require_manager()
    if row.accepted_at is not None:
        raise Conflict("The invitation has already been accepted.")
    if row.revoked_at is None:
        await session.execute(
            text("UPDATE invitations SET revoked_at = now() WHERE id = :id"), {"id": row.id}
        )
        await audit.record(
            session, request, me, "invitation.revoked", target_type="invitation",
            target_id=row.id, details={"email": row.email, "role": row.role},
        )
    return Response(status_code=204)
