"""Entry point for uvicorn: `uvicorn services.auth.main:app --port 8001 --proxy-headers`."""

from __future__ import annotations

import sys

from services.auth.app import create_auth_app
from shared.settings import SettingsError, get_settings

try:
    app = create_auth_app(get_settings())
except SettingsError as error:
    print(str(error), file=sys.stderr)
    raise SystemExit(2) from None
