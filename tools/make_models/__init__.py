"""Reproduce every model MedViz ships: ``python -m tools.make_models`` (see :mod:`.recipes`)."""

from tools.make_models.recipes import *  # noqa: F403
