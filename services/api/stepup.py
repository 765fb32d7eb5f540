"""Step-up at the api: routes that change who can do what need a recent authentication.

`RecentUser` replaces `CurrentUser` on a route that always needs it (creating an API key);
`StepUpCheck` gives a route that needs it for some bodies only (a role change, not a rename) a
`require()` to call. The token's `auth_time` must be within REAUTHENTICATION_MAX_AGE_SECONDS,
else `reauthentication-required` (POST /api/v1/auth/reauthenticate gives a fresh token).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.api.deps import ApiDep, CurrentUser
from services.api.principal import Principal
from shared.errors import ReauthenticationRequired


@dataclass(frozen=True)
class StepUp:
    """Whether the caller authenticated recently enough, and the refusal when not."""

    auth_time: int
    max_age: int

    @property
    def recent(self) -> bool:
        return time.time() - self.auth_time <= self.max_age

    def require(self) -> None:
        if not self.recent:
            raise ReauthenticationRequired(self.max_age)


async def step_up(me: CurrentUser, state: ApiDep) -> StepUp:
    return StepUp(me.claims.auth_time, state.settings.reauthentication_max_age_seconds)


async def recent_user(me: CurrentUser, check: Annotated[StepUp, Depends(step_up)]) -> Principal:
    check.require()
    return me


StepUpCheck = Annotated[StepUp, Depends(step_up)]
RecentUser = Annotated[Principal, Depends(recent_user)]
