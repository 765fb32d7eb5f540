"""Hourly purge of rows no request can use any more (rules in `service`, SQL in `queries`)."""
