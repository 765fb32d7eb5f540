"""The per-request database path: few round trips, still robust to dropped connections."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event


async def test_pooled_connections_killed_by_the_server_are_replaced(api, minter, make_org, admin):
    """Pre-ping: after PostgreSQL drops every pooled connection (a restart), requests still work."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    for _ in range(3):
        assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
    killed = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
        api.settings.service_name,
    )
    assert killed >= 1
    for _ in range(3):
        response = await api.client.get("/api/v1/me", headers=headers)
        assert response.status_code == 200, response.text


async def test_me_costs_one_transaction_without_a_separate_ping_transaction(api, minter, make_org):
    """The pre-ping runs inside the request's transaction: BEGIN, ping, set_config, SELECT, COMMIT."""
    org = await make_org("owner")
    headers = minter.headers(org.owner)
    assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200  # warm pool
    simple: list[str] = []
    original = asyncpg.connection.Connection.execute

    async def counting(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        simple.append(query.strip().rstrip(";").upper())
        return await original(self, query, *args, **kwargs)

    statements: list[str] = []
    engine = api.app.state.resources.engine.sync_engine

    def on_execute(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", on_execute)
    asyncpg.connection.Connection.execute = counting  # type: ignore[method-assign]
    try:
        assert (await api.client.get("/api/v1/me", headers=headers)).status_code == 200
    finally:
        asyncpg.connection.Connection.execute = original  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", on_execute)
    assert simple == ["BEGIN", "COMMIT"]  # no BEGIN/ROLLBACK pair around the ping
    assert len(statements) == 2 and "set_config" in statements[0]
