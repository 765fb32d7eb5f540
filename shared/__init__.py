"""Code every BlockBot core process shares: settings, logging, errors, database, Redis, metrics."""
