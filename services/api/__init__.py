"""The tenant-scoped REST API (`/api/v1/...`): verifies access tokens with public keys only."""
