"""Route modules of the api service, one per resource."""
