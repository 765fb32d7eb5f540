"""JSON logs carry the request id and never passwords, tokens, cookies or Authorization headers."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from shared.context import request_id_var
from shared.logging import JsonFormatter, redact

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
