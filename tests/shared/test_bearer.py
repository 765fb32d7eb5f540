"""The one Bearer header parser both HTTP services use."""

from __future__ import annotations

import pytest

from shared.bearer import MAX_TOKEN_LENGTH, bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer   abc ", "abc"),
        ("BEARER abc", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer    ", None),
        ("Basic abc", None),
        ("Bearerabc", None),
        ("Bearer " + "a" * MAX_TOKEN_LENGTH, "a" * MAX_TOKEN_LENGTH),
        ("Bearer " + "a" * (MAX_TOKEN_LENGTH + 1), None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token
