"""Explore what a network learned beyond single heatmaps.

* :mod:`~medviz.explore.markers`: spurious markers (tag, border, brightness) stamped into images.
* :mod:`~medviz.explore.shortcut`: the shortcut lab (plant a marker, train, reliance score).
* :mod:`~medviz.explore.shortcut_plots`: its Plotly figures.
"""
