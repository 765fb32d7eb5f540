"""Sign-up: registration attempts and their verification (rules in `service`, SQL in `queries`)."""
