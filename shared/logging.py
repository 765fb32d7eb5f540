"""JSON logs, one event per line, with request id, trace id and span id, and secrets redacted.

Redaction is by field name (password, token, secret, cookie, authorization, ...) at any depth
of the `extra` fields, and by pattern in the message text (bearer tokens, JWTs), so a careless
`logger.info("...", extra={"token": t})` still cannot leak.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from functools import lru_cache
from typing import Any

import orjson
from opentelemetry import trace

from shared.api_keys import KEY_PATTERN
from shared.context import request_id_var

REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|cookie|authori[sz]ation|api[_-]?key|credential|private",
    re.IGNORECASE,
)
_SENSITIVE_TEXT = [
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer " + REDACTED),
    # Three base64url segments: a JWT wherever it appears.
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)(token|password|secret)=([^&\s\"']+)"), r"\1=" + REDACTED),
    # API keys anywhere (a body, a query string): the public prefix stays, for debugging.
    (KEY_PATTERN, r"\1_" + REDACTED),
]
# What each of those needs to be present: one search instead of four for the usual text
# (a route, a method, a message) that has none of them.
_MAYBE_SENSITIVE = re.compile(r"(?i)bearer|eyj|token=|password=|secret=|bb_")
# Attributes every LogRecord has; anything else came from `extra=`.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


@lru_cache(maxsize=1024)
def _sensitive_key(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


# Values with nothing inside to redact (`type(value) in`: a bool is an int, an enum is not).
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def redact(value: Any, key: str | None = None) -> Any:
    """Return `value` with sensitive fields and token-looking strings replaced."""
    if key is not None and _sensitive_key(key):
        return REDACTED
    if type(value) in _PLAIN_TYPES:
        return value
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """Replace bearer tokens, JWTs and `token=` style pairs inside free text."""
    if _MAYBE_SENSITIVE.search(text) is None:
        return text
    for pattern, replacement in _SENSITIVE_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _trace_ids() -> tuple[str | None, str | None]:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object per line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._second = -1
        self._second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        # strftime once per second, not per line (an access log writes hundreds a second).
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = _trace_ids()
        event: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "event": redact_text(record.getMessage()),
            "request_id": request_id_var.get(),
            "trace_id": trace_id,
            "span_id": span_id,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                event[key] = redact(value, key)
        if record.exc_info:
            # Stack traces stay in our logs (never in responses), redacted like the rest.
            event["exception"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(event, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger (ours, uvicorn's, arq's) through the JSON formatter on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Per-record costs nothing here reads: the caller's file and line (a stack walk), thread
    # and process names (the JSON carries the service and request id instead).
    logging._srcfile = None  # the documented switch (logging HOWTO, "Optimization")
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "arq", "arq.worker"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Our access log replaces uvicorn's, which would print raw paths with query strings. With no
    # handler to reach, uvicorn does not even build its line's arguments for each response (it
    # asks `hasHandlers()` per connection); `disabled` alone still had it quote every path.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
