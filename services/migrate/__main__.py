"""`python -m services.migrate`: bootstrap roles, upgrade the schema to head, exit 0."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import SecretStr

from migrations.roles import Roles
from services.migrate.bootstrap import bootstrap_roles
from shared.db import database_url
from shared.logging import configure_logging
from shared.settings import Environment, Settings, SettingsError, get_settings

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger("blockbot.migrate")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def run_migrations(settings: Settings, target: str = "head") -> None:
    """Bootstrap the roles, then apply every pending migration (up to `target`) as the owner."""
    if settings.env is Environment.PRODUCTION:
        settings.require("auth_db_password", "api_db_password")
    roles = Roles.for_prefix(settings.db_role_prefix)
    dsn = database_url(settings).replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(
        bootstrap_roles(
            dsn,
            roles,
            auth_password=_secret(settings.auth_db_password),
            api_password=_secret(settings.api_db_password),
        )
    )
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["roles"] = roles
    config.attributes["database_url"] = database_url(settings)
    command.upgrade(config, target)
    logger.info("migrations applied", extra={"roles": [roles.owner, roles.auth, roles.api]})


def main() -> None:
    settings = get_settings()
    configure_logging("migrate", settings.log_level)
    try:
        run_migrations(settings)
    except SettingsError as error:
        print(str(error), file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
