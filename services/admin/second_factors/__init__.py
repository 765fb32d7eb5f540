"""`remove-second-factors`: the lost-device path (verify the person's identity first: README)."""
