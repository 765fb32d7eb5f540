"""Refresh-token sessions (rules in `service`, SQL in `queries`)."""
