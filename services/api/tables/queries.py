"""SQL the domains share for their org-scoped tables: one row by id, keyset pages by (created_at, id).

Every statement runs in the request's tenant transaction: RLS limits it to the caller's org (a
row of another org is absent). Table and column names come from the domains' queries modules'
constants, never from input; values are bound parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.pagination import TimeIdRow, decode_time_id_cursor, time_id_bound, time_id_page
from shared.rows import all_of, one_or_none

R = TypeVar("R", bound=TimeIdRow)


@dataclass(frozen=True)
class Table(Generic[R]):
    """`table`'s rows as `row`s built from `columns`, listed in (created_at, id) order."""

    name: str
    columns: str
    row: Callable[..., R]
    newest_first: bool

    async def get(self, session: AsyncSession, row_id: UUID, *, lock: bool = False) -> R | None:
        """The row with this id (locked FOR UPDATE when `lock`), None when absent."""
        suffix = " FOR UPDATE" if lock else ""
        statement = text(f"SELECT {self.columns} FROM {self.name} WHERE id = :id{suffix}")
        return await one_or_none(session, self.row, statement, {"id": row_id})

    async def page(
        self, session: AsyncSession, *, limit: int, cursor: str | None
    ) -> tuple[Sequence[R], str | None]:
        """Up to `limit` rows from just past the key of `cursor` (None: the first page), and the
        next page's cursor (None on the last page). A malformed cursor is a 422, before any SQL."""
        key = None if cursor is None else decode_time_id_cursor(cursor)
        where, params = time_id_bound(key, "<" if self.newest_first else ">")
        order = "created_at DESC, id DESC" if self.newest_first else "created_at, id"
        bound: dict[str, Any] = {**params, "limit": limit + 1}  # one more: is there a next page?
        statement = text(f"SELECT {self.columns} FROM {self.name} {where} ORDER BY {order} LIMIT :limit")
        return time_id_page(await all_of(session, self.row, statement, bound), limit)
