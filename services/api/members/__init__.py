"""Members of the caller's organization: list, get, change (name, role), remove."""
