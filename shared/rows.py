"""Typed rows from SQL results: a queries module turns each result row into its own dataclass by
column name (never by position), so a reordered SELECT cannot shift values between fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

T = TypeVar("T")


async def one_or_none(
    db: AsyncSession, row_type: Callable[..., T], statement: Executable, params: Mapping[str, Any]
) -> T | None:
    """The statement's one row as `row_type` (its columns as keyword arguments), or None."""
    row = (await db.execute(statement, params)).one_or_none()
    return None if row is None else row_type(**row._mapping)


async def exists(db: AsyncSession, statement: Executable, params: Mapping[str, Any]) -> bool:
    """Whether the statement returns any row."""
    return (await db.execute(statement, params)).first() is not None


async def all_of(
    db: AsyncSession, row_type: Callable[..., T], statement: Executable, params: Mapping[str, Any]
) -> list[T]:
    """Every row of the statement as `row_type`, in the statement's order."""
    return [row_type(**row._mapping) for row in await db.execute(statement, params)]


async def ids_of(
    db: AsyncSession, statement: Executable, params: Mapping[str, Any], *, column: str = "id"
) -> list[UUID]:
    """The ids a statement selects, locks or returns: its `column` of every row, by name."""
    return [row._mapping[column] for row in await db.execute(statement, params)]
