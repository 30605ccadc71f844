"""Entry point of ``python -m medviz``."""

import sys

from medviz.cli import main

sys.exit(main())
