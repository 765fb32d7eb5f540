"""The org-scoped tables the members, invitations and API keys domains read as typed rows."""
