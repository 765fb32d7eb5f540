"""Sign-in with external identity providers (OpenID Connect, GitHub) and linked identities."""
