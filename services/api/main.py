"""ASGI entry point: `uvicorn services.api.main:app --port 8002`."""

from __future__ import annotations

import sys

from services.api.app import create_api_app
from shared.settings import SettingsError, get_settings

try:
    app = create_api_app(get_settings())
except SettingsError as error:
    print(str(error), file=sys.stderr)
    raise SystemExit(2) from None
