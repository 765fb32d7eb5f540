"""Entry point for uvicorn: `uvicorn services.auth.main:app --port 8001 --proxy-headers`."""

from __future__ import annotations

import sys

from shared.multiprocess_metrics import enable_in_uvicorn_workers

# Before anything imports prometheus_client: with several uvicorn workers (WEB_CONCURRENCY)
# the metrics of all of them are aggregated (shared/multiprocess_metrics.py).
enable_in_uvicorn_workers()

from services.auth.app import create_auth_app  # noqa: E402
from shared.settings import SettingsError, get_settings  # noqa: E402

try:
    app = create_auth_app(get_settings())
except SettingsError as error:
    print(str(error), file=sys.stderr)
    raise SystemExit(2) from None
