"""The migrate job: role bootstrap, then `alembic upgrade head`; idempotent, exits 0."""
