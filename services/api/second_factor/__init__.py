"""The organization's second-factor policy: the owner's setting and its enforcement on tokens."""
