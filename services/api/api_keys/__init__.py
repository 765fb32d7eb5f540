"""API keys: org-scoped machine credentials for bots (create, list, revoke; owner/admin)."""
