"""One-time tokens of emailed links (rules in `service`, SQL in `queries`)."""
