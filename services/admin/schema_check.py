"""Whether a restored schema is the migrations' own: the comparison of two catalog readings.

PostgreSQL stores expressions (check constraints, policies, defaults, views) as trees and prints
them back: an expression the migrations wrote as `x BETWEEN 1 AND 2 AND y` reads
`((x >= 1) AND (x <= 2)) AND y` where it was created, and `(x >= 1) AND (x <= 2) AND y` once
restored from a dump (printed, then parsed again, which merges nested ANDs). Both mean the same
(AND and OR are associative, NULLs included), so both readings are compared with nested groups
of one connective merged; nothing else is rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Item(Protocol):
    """One catalog object (services/admin/queries.py `SchemaItem`)."""

    @property
    def kind(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def definition(self) -> str: ...


@dataclass(frozen=True)
class _Quoted:
    """A quoted literal or identifier: opaque, never searched for AND/OR."""

    text: str


_Part = str | _Quoted | list["_Part"]
_CONNECTIVES = (" AND ", " OR ")


def _parse(text: str, start: int) -> tuple[list[_Part], int]:
    """The parts of `text` from `start` up to its closing parenthesis (or the end)."""
    parts: list[_Part] = []
    plain: list[str] = []
    index = start

    def flush() -> None:
        if plain:
            parts.append("".join(plain))
            plain.clear()

    while index < len(text):
        char = text[index]
        if char in "'\"":
            end = index + 1
            while end < len(text) and not (text[end] == char and text[end + 1 : end + 2] != char):
                end += 2 if text[end] == char else 1
            flush()
            parts.append(_Quoted(text[index : end + 1]))
            index = end + 1
        elif char == "(":
            flush()
            child, index = _parse(text, index + 1)
            parts.append(child)
        elif char == ")":
            flush()
            return parts, index + 1
        else:
            plain.append(char)
            index += 1
    flush()
    return parts, index


def _connective(parts: list[_Part]) -> str | None:
    """ " AND " or " OR " when the top level of a group joins its operands with that one only."""
    found = {word for part in parts if isinstance(part, str) for word in _CONNECTIVES if word in part}
    return found.pop() if len(found) == 1 else None


def _render(parts: list[_Part]) -> str:
    joined = _connective(parts)
    out: list[str] = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, _Quoted):
            out.append(part.text)
        else:
            before = parts[index - 1] if index > 0 else ""
            after = parts[index + 1] if index + 1 < len(parts) else ""
            # A whole operand: nothing but the connective on either side (not `f(...)`, `NOT (...)`).
            whole = (
                joined is not None
                and isinstance(before, str)
                and isinstance(after, str)
                and (before == "" or before.endswith(joined))
                and (after == "" or after.startswith(joined))
            )
            inner = _render(part)
            out.append(inner if whole and _connective(part) == joined else f"({inner})")
    return "".join(out)


def flatten_boolean_groups(text: str) -> str:
    """`((a AND b) AND c)` as `(a AND b AND c)`, the same for OR; quotes left alone."""
    return _render(_parse(text, 0)[0])


def schema_differences(restored: Sequence[Item], expected: Sequence[Item]) -> list[str]:
    """What the restored schema has that the migrations' has not, lacks, or has otherwise."""

    def canonical(items: Sequence[Item]) -> dict[tuple[str, str], str]:
        return {
            (item.kind, flatten_boolean_groups(item.name)): flatten_boolean_groups(item.definition)
            for item in items
        }

    have, want = canonical(restored), canonical(expected)
    lines = [f"unexpected {kind} {name}" for kind, name in sorted(have.keys() - want.keys())]
    lines += [f"missing {kind} {name}" for kind, name in sorted(want.keys() - have.keys())]
    lines += [
        f"{kind} {name} differs from the migrations'"
        for kind, name in sorted(have.keys() & want.keys())
        if have[(kind, name)] != want[(kind, name)]
    ]
    return lines
