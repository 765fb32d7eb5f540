"""GET /me: the caller and their organization (also how every request loads its caller)."""
