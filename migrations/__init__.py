"""Alembic environment and versions: the schema, its RLS policies and its grants."""
