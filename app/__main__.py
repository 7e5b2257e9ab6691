"""`python -m app` is `berth`."""

from app.cli import main

raise SystemExit(main())
