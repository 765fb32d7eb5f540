"""Where the auth service's HTTP API lives: every route, and the refresh cookie's path."""

AUTH_PREFIX = "/api/v1/auth"
