"""Step-up at the api: routes that change who can do what need a recent authentication.

`RecentUser` replaces `CurrentUser` on a route that always needs it (creating an API key,
removing a member), `RecentManager` replaces `Manager` (inviting someone); `StepUpCheck` gives
a route that needs it for some bodies only (a role change, not a rename) a `require()` to call.
The token's `auth_time` must be within REAUTHENTICATION_MAX_AGE_SECONDS, else
`reauthentication-required` (POST /api/v1/auth/reauthenticate gives a fresh token).

They read the verified claims only: `RecentUser` and `RecentManager` refuse before the caller's
row is read, so no transaction is opened for a refused request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.api.deps import ApiDep, Credential, CurrentUser, Manager
from services.api.principal import Principal
from shared.access_tokens import AccessClaims
from shared.errors import ReauthenticationRequired


@dataclass(frozen=True)
class StepUp:
    """Whether the caller authenticated recently enough, and the refusal when not."""

    auth_time: int | None  # None: an API key (refused by the person-only routes anyway)
    max_age: int

    @property
    def recent(self) -> bool:
        return self.auth_time is None or time.time() - self.auth_time <= self.max_age

    def require(self) -> None:
        if not self.recent:
            raise ReauthenticationRequired(self.max_age)


async def step_up(credential: Credential, state: ApiDep) -> StepUp:
    """The caller's step-up state, from the credential FastAPI verified once for the request."""
    auth_time = credential.auth_time if isinstance(credential, AccessClaims) else None
    return StepUp(auth_time, state.settings.reauthentication_max_age_seconds)


StepUpCheck = Annotated[StepUp, Depends(step_up)]


async def require_recent(check: StepUpCheck) -> None:
    check.require()


async def recent_user(_recent: Annotated[None, Depends(require_recent)], me: CurrentUser) -> Principal:
    return me


RecentUser = Annotated[Principal, Depends(recent_user)]


async def recent_manager(_recent: Annotated[None, Depends(require_recent)], me: Manager) -> Principal:
    return me


RecentManager = Annotated[Principal, Depends(recent_manager)]
