"""Redaction of the `extra` fields of a log line, whatever the type of their values."""

from __future__ import annotations

import enum
import logging

import orjson

from shared.logging import REDACTED, JsonFormatter, configure_logging, redact


class Kind(enum.StrEnum):
    TOKEN = "Bearer abc.def.ghi"


def line(**extra: object) -> dict[str, object]:
    record = logging.getLogger("blockbot.test").makeRecord(
        "blockbot.test", logging.INFO, "", 0, "request", (), None, extra=extra
    )
    parsed: dict[str, object] = orjson.loads(JsonFormatter("api").format(record))
    return parsed


def test_plain_values_keep_their_type_and_sensitive_names_are_redacted_whatever_the_type() -> None:
    parsed = line(status=200, duration_ms=1.5, cached=False, user=None, token=12345, password=None)
    assert parsed["status"] == 200 and parsed["duration_ms"] == 1.5
    assert parsed["cached"] is False and parsed["user"] is None
    assert parsed["token"] == REDACTED and parsed["password"] == REDACTED


def test_text_inside_subclasses_and_containers_is_still_searched() -> None:
    assert redact(Kind.TOKEN) == f"Bearer {REDACTED}"
    assert redact({"n": 1, "note": ["Bearer abc.def"]}) == {"n": 1, "note": [f"Bearer {REDACTED}"]}
    assert line(method="GET", route="/api/v1/me?token=abc")["route"] == f"/api/v1/me?token={REDACTED}"


def test_uvicorns_access_log_has_nowhere_to_go_so_uvicorn_skips_it() -> None:
    """uvicorn builds its access line (client address, quoted path and query) for every response
    while `uvicorn.access` has a handler, its own or the root's; ours replaces it."""
    access = logging.getLogger("uvicorn.access")
    root = logging.getLogger()
    saved = (access.handlers[:], access.propagate, access.disabled, root.handlers[:], root.level)
    access.handlers[:] = [logging.NullHandler()]  # what uvicorn's own logging config leaves
    try:
        configure_logging("api")
        assert root.handlers and not access.hasHandlers()
    finally:
        access.handlers[:], access.propagate, access.disabled = saved[0], saved[1], saved[2]
        root.handlers[:] = saved[3]
        root.setLevel(saved[4])
