"""Step-up for the auth service's sensitive routes: an authentication within the last
REAUTHENTICATION_MAX_AGE_SECONDS (the token's `auth_time`), else `reauthentication-required`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends

from services.auth.deps import Claims
from services.auth.state import AuthDep
from shared.access_tokens import AccessClaims
from shared.errors import ReauthenticationRequired


async def require_recent_authentication(claims: Claims, state: AuthDep) -> AccessClaims:
    max_age = state.settings.reauthentication_max_age_seconds
    if time.time() - claims.auth_time > max_age:
        raise ReauthenticationRequired(max_age)
    return claims


RecentClaims = Annotated[AccessClaims, Depends(require_recent_authentication)]
