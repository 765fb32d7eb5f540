"""JSON logs carry the request id and never passwords, tokens, cookies or Authorization headers."""

from __future__ import annotations

import enum
import io
import json
import logging
from typing import Any

from shared.context import request_id_var
from shared.logging import REDACTED, JsonFormatter, configure_logging, redact

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def log_line(message: str, **extra: object) -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger(f"test.logging.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.info(message, extra=extra)
    line = stream.getvalue()
    assert line.count("\n") == 1
    event: dict[str, Any] = json.loads(line)
    return event


def test_secrets_in_fields_and_text_are_redacted():
    token = request_id_var.set("req-12345678")
    try:
        logger_event = log_line(
            f"login with Authorization: Bearer abc.def.ghi and {JWT} and ?token=t0k3n",
            password="hunter2-password",
            refresh_token="r-secret",
            headers={"cookie": "bb_refresh=xyz", "authorization": "Bearer zzz", "accept": "json"},
            outcome="ok",
        )
    finally:
        request_id_var.reset(token)
    text = json.dumps(logger_event)
    for secret in ("hunter2", "r-secret", "xyz", "zzz", "abc.def.ghi", JWT, "t0k3n"):
        assert secret not in text
    assert logger_event["request_id"] == "req-12345678"
    assert logger_event["outcome"] == "ok"
    assert logger_event["headers"]["accept"] == "json"


def test_redact_walks_nested_structures():
    value = {
        "user": {"email": "a@example.com", "password_hash": "$argon2id$..."},
        "items": [{"api_key": "k"}],
    }
    assert redact(value) == {
        "user": {"email": "a@example.com", "password_hash": "[REDACTED]"},
        "items": [{"api_key": "[REDACTED]"}],
    }


class Kind(enum.StrEnum):
    TOKEN = "Bearer abc.def.ghi"


def test_plain_values_keep_their_type_and_sensitive_names_are_redacted_whatever_the_type() -> None:
    parsed = log_line(
        "request", status=200, duration_ms=1.5, cached=False, user=None, token=12345, password=None
    )
    assert parsed["status"] == 200 and parsed["duration_ms"] == 1.5
    assert parsed["cached"] is False and parsed["user"] is None
    assert parsed["token"] == REDACTED and parsed["password"] == REDACTED


def test_text_inside_subclasses_and_containers_is_still_searched() -> None:
    assert redact(Kind.TOKEN) == f"Bearer {REDACTED}"
    assert redact({"n": 1, "note": ["Bearer abc.def"]}) == {"n": 1, "note": [f"Bearer {REDACTED}"]}
    assert (
        log_line("request", method="GET", route="/api/v1/me?token=abc")["route"]
        == f"/api/v1/me?token={REDACTED}"
    )


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
