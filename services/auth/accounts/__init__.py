"""Password and magic-link login, password reset (rules in `service`, SQL in `queries`)."""
