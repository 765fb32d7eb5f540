"""The api's URL prefix.

Each domain's router carries the full `/api/v1` prefix itself (instead of being included under
a prefixed parent): FastAPI 0.165 includes routers lazily and exposes the ORIGINAL route in
`scope["route"]`, so only then is `route.path` the full template the metrics and the
per-endpoint rate-limit key need.
"""

API_PREFIX = "/api/v1"
