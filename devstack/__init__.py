"""The local stack without Docker: embedded PostgreSQL and Redis, used by `make run` and tests."""
