"""The gateway's own problem documents (Compose): bodies for the errors Traefik itself produces."""
