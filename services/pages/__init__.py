"""The account pages: static HTML, CSS and ES modules, clients of the public REST API.

Served by the auth service (`services/auth/app.py` includes `routes.router` unless
`PAGES_ENABLED=false`); the files are in `static/`, read once at import.
"""
