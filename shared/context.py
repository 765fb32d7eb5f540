"""Per-request context carried through async calls (request id), read by logs and errors."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
