"""Accepting an invitation (rules in `service`, SQL in `queries`)."""
