"""Explore what a network learned, beyond single heatmaps: the shortcut lab (:mod:`medviz.explore.shortcut`, markers in :mod:`medviz.explore.markers`)."""
