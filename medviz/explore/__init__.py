"""Explore what a network learned, beyond one image's heatmap.

* :mod:`~medviz.explore.embedding`: the embedding map: penultimate-layer
  features of a dataset split projected to 2-D (PCA, UMAP or t-SNE), with
  predictions, confidence and correctness per point, and nearest neighbours in
  feature space for any image (an uploaded one too).
* :mod:`~medviz.explore.tcav`: concept tests (TCAV, Kim et al. 2018): how
  sensitive a class is to a concept a user defines by example images, with a
  significance test against random concepts, per layer.
* :mod:`~medviz.explore.plots`: the Plotly figures of both (scatter with
  thumbnails, neighbour strip, TCAV bars) and the stand-alone HTML map.
* :mod:`~medviz.explore.markers`: spurious markers (tag, border, brightness)
  stamped into images.
* :mod:`~medviz.explore.shortcut`: the shortcut lab (plant a marker in one
  class, train with and without it, reliance score, Grad-CAM mass on the
  marker); :mod:`~medviz.explore.shortcut_plots`: its Plotly figures.

Every view comes with :data:`~medviz.explore.embedding.MAP_LIMITS`,
:data:`~medviz.explore.tcav.TCAV_LIMITS` or the shortcut lab's own: two
sentences on what it shows and what it cannot show. Importing this package
does not import TensorFlow.
"""

from __future__ import annotations

from medviz.explore.embedding import (
    COLOUR_BY,
    MAP_LIMITS,
    NEIGHBOUR_LIMITS,
    PROJECTIONS,
    EmbeddingMap,
    Neighbours,
    available_projections,
    embedding_map,
    image_features,
    nearest_neighbours,
    project,
)
from medviz.explore.tcav import (
    TCAV_LIMITS,
    LayerTcav,
    TcavResult,
    default_tcav_layers,
    learn_cav,
    run_tcav,
)

__all__ = [
    "COLOUR_BY",
    "MAP_LIMITS",
    "NEIGHBOUR_LIMITS",
    "PROJECTIONS",
    "TCAV_LIMITS",
    "EmbeddingMap",
    "LayerTcav",
    "Neighbours",
    "TcavResult",
    "available_projections",
    "default_tcav_layers",
    "embedding_map",
    "image_features",
    "learn_cav",
    "nearest_neighbours",
    "project",
    "run_tcav",
]
