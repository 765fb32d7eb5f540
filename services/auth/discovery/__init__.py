"""Discovery: the public keys and the OpenID configuration that point JOSE/OIDC libraries at them."""
