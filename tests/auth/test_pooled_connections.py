"""Auth's pooled connections: connections the server closed are never used.

(The statements a login and a refresh send, without a ping, are listed by bench/auth_paths.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import event

from services.auth.app import create_auth_app
from shared.resources import Resources
from shared.settings import Settings
from tests.auth.helpers import GENEROUS, KEYRING, AuthApp, admin, do_refresh, login, refresh_cookie, signup


async def test_connections_killed_by_the_server_are_replaced(
    make_settings: Callable[..., Settings], admin_dsn: str
) -> None:
    """After PostgreSQL drops every pooled connection (as a restart does), a login and a refresh
    succeed at once, on new connections: the pool refuses closed connections at checkout."""
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

                logged_in = await login(client, email)
                assert logged_in.status_code == 200, logged_in.text
                refreshed = await do_refresh(client, refresh_cookie(logged_in))
                assert refreshed.status_code == 200, refreshed.text
                assert len(opened) > len(pooled)  # new connections replaced the closed ones
    finally:
        await resources.close()
