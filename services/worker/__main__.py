"""`python -m services.worker`: run the email worker (see services/worker/main.py)."""

from services.worker.main import main

raise SystemExit(main())
