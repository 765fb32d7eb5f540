"""`python -m services.admin ...`: see services/admin/cli.py."""

from services.admin.cli import main

raise SystemExit(main())
