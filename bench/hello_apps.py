"""The two floors the request-path benchmark compares against: a raw ASGI app and a FastAPI app.

uvicorn bench.hello_apps:raw        # the cost of uvicorn alone
uvicorn bench.hello_apps:fastapi    # plus FastAPI routing and a JSON response
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_BODY = b'{"hello":"world"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A hello-world ASGI app (with the lifespan protocol, which uvicorn probes)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


fastapi = FastAPI()


@fastapi.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
