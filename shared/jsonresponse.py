"""Fast JSON encoding (orjson) for responses and log lines."""

from typing import Any

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.responses import Response

# UTC as `Z`, as pydantic writes it: one format for every timestamp a service returns.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def json_bytes(value: Any) -> bytes:
    """Serialize with orjson; UUIDs, datetimes and dataclasses are handled natively."""
    return orjson.dumps(value, option=_OPTIONS)


class ORJSONResponse(JSONResponse):
    """Default response class for our apps: serialized by orjson (`json_bytes`), in C."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    """`model` as a JSON response, serialized by pydantic in one step.

    For hot routes: a handler returning a model has FastAPI dump it, validate the dump against
    the route's response model and serialize it again. A model built by our code was validated
    when it was built; the route still declares it (`response_model=`) for the OpenAPI document.
    """
    return Response(model.model_dump_json(), status_code, media_type="application/json")
