"""Names people choose (user names, organization names): one line of visible text.

They go into emails sent from the platform's address (invitations, verification) and into the
web app, so control characters are refused: a newline would let a name forge extra lines in a
mail, NUL cannot be stored at all (PostgreSQL text refuses it), and bidirectional overrides can
disguise text.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Bidirectional embedding/override/isolate controls (format characters that reorder text).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def refuse_control_characters(value: str) -> str:
    """The value unchanged, or ValueError if it holds a control or bidirectional override."""
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in value):
        raise ValueError("must not contain control characters (line breaks, NUL, tabs, ...)")
    return value


DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(refuse_control_characters),
]
