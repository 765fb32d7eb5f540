"""Database errors never carry bound parameters (security review finding 11: Argon2 hashes in logs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import create_engine
from shared.settings import Settings

SECRET = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0LXNhbHQ$bm90LWEtcmVhbC1oYXNo"


async def test_a_failed_statement_does_not_show_its_parameters(
    make_settings: Callable[..., Settings],
) -> None:
    engine = create_engine(make_settings("auth"))
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as info:
                await conn.execute(text("SELECT CAST(:value AS text), 1 / 0"), {"value": SECRET})
    finally:
        await engine.dispose()
    message = str(info.value)
    assert "division by zero" in message  # the error itself is still explained
    assert SECRET not in message and "argon2" not in message
