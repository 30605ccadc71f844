"""``python -m tools.make_models``."""

from tools.make_models.cli import main

raise SystemExit(main())
