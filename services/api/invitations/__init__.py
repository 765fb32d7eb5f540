"""Invitations: create (and email), list, revoke. Accepting one is the auth service's route."""
