"""The restored-schema comparison merges only what PostgreSQL's own round trip merges."""

from __future__ import annotations

import pytest

from services.admin.queries import SchemaItem
from services.admin.schema_check import flatten_boolean_groups, schema_differences

pytestmark = pytest.mark.slow


def test_nested_groups_of_one_connective_merge_and_nothing_else_does() -> None:
    created = "CHECK ((((length(email) >= 3) AND (length(email) <= 320)) AND (email = lower(email))))"
    restored = "CHECK (((length(email) >= 3) AND (length(email) <= 320) AND (email = lower(email))))"
    assert flatten_boolean_groups(created) == flatten_boolean_groups(restored) == restored
    # Different meanings stay different.
    assert flatten_boolean_groups("((a OR b) AND c)") == "((a OR b) AND c)"
    assert flatten_boolean_groups("((a AND b) OR c)") == "((a AND b) OR c)"
    assert flatten_boolean_groups("(NOT (a AND b) AND c)") == "(NOT (a AND b) AND c)"
    assert flatten_boolean_groups("(f(a AND b) AND c)") == "(f(a AND b) AND c)"
    # Quotes are opaque.
    assert flatten_boolean_groups("(x = '(a AND b) AND c')") == "(x = '(a AND b) AND c')"
    assert flatten_boolean_groups("((x = 'it''s') AND (y AND z))") == "((x = 'it''s') AND y AND z)"


def test_differences_name_each_object() -> None:
    expected = [
        SchemaItem("relation", "public.users", "r rls=true forced=true"),
        SchemaItem("policy", "public.users.tenant", "PERMISSIVE {public} ALL using=(org_id = current_org())"),
    ]
    restored = [
        SchemaItem("relation", "public.users", "r rls=true forced=false"),
        SchemaItem("function", "public.backdoor()", "..."),
    ]
    assert schema_differences(restored, expected) == [
        "unexpected function public.backdoor()",
        "missing policy public.users.tenant",
        "relation public.users differs from the migrations'",
    ]
    assert schema_differences(expected, expected) == []
