"""The auth service: accounts, sessions with rotating refresh tokens, one-time links, JWKS."""
