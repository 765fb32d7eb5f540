"""The caller's organization: read it, rename it (owner or admin)."""
