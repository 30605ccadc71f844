"""``python -m tools.make_models``."""

from tools.make_models.recipes import main

raise SystemExit(main())
