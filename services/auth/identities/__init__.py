"""Users and their organization as the login paths read them (rules in `service`, SQL in `queries`)."""
