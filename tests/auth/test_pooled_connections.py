"""Auth's pooled connections: no ping, yet connections the server closed are never used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import event

from services.auth.app import create_auth_app
from shared.resources import Resources
from shared.settings import Settings
from tests.api.helpers import round_trips
from tests.auth.helpers import GENEROUS, KEYRING, AuthApp, admin, do_refresh, login, refresh_cookie, signup


async def test_connections_killed_by_the_server_are_replaced_without_a_ping(
    make_settings: Callable[..., Settings], admin_dsn: str
) -> None:
    """After PostgreSQL drops every pooled connection (as a restart does), a login and a refresh
    succeed at once, and no `SELECT 1` is sent: the pool refuses closed connections at checkout."""
    settings = make_settings("auth", **GENEROUS)
    resources = Resources.create(settings)
    opened: list[asyncpg.Connection] = []

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        opened.append(dbapi_connection.driver_connection)

    event.listen(resources.engine.sync_engine.pool, "connect", on_connect)
    app = create_auth_app(settings, resources, keyring=KEYRING)
    try:
        async with app.router.lifespan_context(app):
            auth = AuthApp(app, settings)
            async with auth.client() as client:
                email, verified = await signup(client, settings)
                assert (await do_refresh(client, refresh_cookie(verified))).status_code == 200
                pooled = list(opened)
                assert pooled
                async with admin(admin_dsn) as conn:
                    killed = await conn.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND application_name = $1"
                        " AND pid <> pg_backend_pid()",
                        settings.service_name,
                    )
                assert killed >= len(pooled)
                async with asyncio.timeout(30):  # the process has seen each of them close
                    while not all(c.is_closed() for c in pooled):
                        await asyncio.sleep(0.01)

                with round_trips(prepares=False) as sent:
                    logged_in = await login(client, email)
                    assert logged_in.status_code == 200, logged_in.text
                    refreshed = await do_refresh(client, refresh_cookie(logged_in))
                    assert refreshed.status_code == 200, refreshed.text
                assert not any(s.strip().upper() == "SELECT 1" for s in sent), sent
                assert len(opened) > len(pooled)  # new connections replaced the closed ones
    finally:
        await resources.close()
