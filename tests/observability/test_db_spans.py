"""The one-statement read (`shared.db.read_in_one_round_trip`) runs past SQLAlchemy's
instrumentation, so it makes its own client span: the statement, never its values."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared.db import create_engine, read_in_one_round_trip, tenant_bound
from shared.settings import Settings

ONE_USER = tenant_bound("SELECT id FROM users WHERE id = :id")


async def test_a_one_round_trip_read_is_one_client_span_without_values(
    spans: InMemorySpanExporter, make_settings: Callable[..., Settings]
) -> None:
    engine = create_engine(make_settings("api"))
    org, user = uuid.uuid4(), uuid.uuid4()
    try:
        spans.clear()
        assert await read_in_one_round_trip(engine, ONE_USER, {"id": user}, org_id=org) == []
    finally:
        await engine.dispose()
    database = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT and (s.attributes or {}).get("db.system") == "postgresql"
    ]
    assert len(database) == 1, [s.name for s in spans.get_finished_spans()]
    attributes = dict(database[0].attributes or {})
    assert attributes["db.statement"] == ONE_USER.named
    assert str(org) not in str(attributes) and str(user) not in str(attributes)
