"""Field types shared by the api's request and response bodies."""

from __future__ import annotations

from shared.names import DisplayName

Name = DisplayName
