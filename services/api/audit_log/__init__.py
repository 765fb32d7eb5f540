"""The org's audit log, newest first (owner/admin). Events are written by `services/api/audit.py`."""
