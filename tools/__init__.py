"""Tooling of the MedViz checkout (not installed with the library).

``tools.make_models`` rebuilds the shipped models and the bench report from
the public API of :mod:`medviz`; ``tools.browser`` serves the app and drives it
in Chromium for the e2e tests and the bench.
"""
