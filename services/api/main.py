"""ASGI entry point: `uvicorn services.api.main:app --port 8002`."""

from services.api.app import create_api_app
from shared.settings import get_settings

app = create_api_app(get_settings())
