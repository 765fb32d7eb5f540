"""Opaque cursors for keyset pagination: base64url of the JSON sort key of the last item."""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar
from uuid import UUID

import orjson
from fastapi import Query
from pydantic import BaseModel

from shared.access_tokens import b64url_decode, b64url_encode
from shared.errors import ValidationFailed

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1..100)")]
Cursor = Annotated[str | None, Query(max_length=512, description="Opaque cursor from the previous page")]
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*key: Any) -> str:
    return b64url_encode(orjson.dumps([str(part) for part in key]))


def _invalid() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is invalid.",
        extra={"errors": [{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}]},
    )


def _parts(cursor: str, count: int) -> list[str]:
    try:
        parts = orjson.loads(b64url_decode(cursor))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise _invalid() from None
    if not isinstance(parts, list) or len(parts) != count or not all(isinstance(p, str) for p in parts):
        raise _invalid()
    return parts


def decode_time_id_cursor(cursor: str) -> tuple[datetime, UUID]:
    """A (created_at, id) cursor."""
    stamp, ident = _parts(cursor, 2)
    try:
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError
        # In UTC here: an offset that pushes it outside datetime's range is the client's error
        # (422), not an OverflowError in the driver (500).
        return when.astimezone(UTC), UUID(ident)
    except (ValueError, OverflowError):
        raise _invalid() from None


def decode_int_cursor(cursor: str) -> int:
    """A (bigint id) cursor."""
    (value,) = _parts(cursor, 1)
    try:
        number = int(value)
    except ValueError:
        raise _invalid() from None
    if not 0 < number < 2**63:
        raise _invalid()
    return number


def split_page(rows: Sequence[T], limit: int) -> tuple[Sequence[T], bool]:
    """Rows were fetched with LIMIT limit+1: the page, and whether there is a next one."""
    return rows[:limit], len(rows) > limit


class TimeIdRow(Protocol):
    """A row sorted by (created_at, id)."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> UUID: ...


R = TypeVar("R", bound=TimeIdRow)


def time_id_page(rows: Sequence[R], limit: int) -> tuple[Sequence[R], str | None]:
    """Rows fetched with LIMIT limit+1: the page, and the cursor of the next one (or None)."""
    page, more = split_page(rows, limit)
    return page, encode_cursor(page[-1].created_at.isoformat(), page[-1].id) if more else None


def time_id_bound(
    key: tuple[datetime, UUID] | None, direction: Literal["<", ">"]
) -> tuple[str, dict[str, object]]:
    """The WHERE clause (`:ts`, `:id` parameters) of a (created_at, id) keyset page, or none."""
    if key is None:
        return "", {}
    return f"WHERE (created_at, id) {direction} (:ts, :id)", {"ts": key[0], "id": key[1]}
