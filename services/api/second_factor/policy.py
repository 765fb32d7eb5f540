"""Enforcing the org's second-factor policy on people's tokens (API keys are not people: unaffected).

Checked with the caller's row, which the request reads anyway (the flag is one more column of
that statement): a token below `aal2` in an org that requires a second factor is refused with
`second-factor-required` on every route that takes a person, from the moment the owner turns
the policy on.
"""

from __future__ import annotations

from services.api.me.queries import CallerRow
from shared.access_tokens import AccessClaims
from shared.errors import SecondFactorRequired

MULTI_FACTOR = "aal2"


def require_org_level(row: CallerRow, claims: AccessClaims) -> None:
    if row.org_requires_second_factor and claims.acr != MULTI_FACTOR:
        raise SecondFactorRequired()
