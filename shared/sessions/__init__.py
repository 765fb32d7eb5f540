"""Sessions as every service sees them: revoking them (the auth service owns the rest)."""
