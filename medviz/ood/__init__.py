"""Out-of-distribution warnings: is this image the kind of image the model was trained on?

* :mod:`medviz.ood.features`: input statistics and pooled multi-layer features.
* :mod:`medviz.ood.detector`: :class:`OodDetector` (stored in the card's ``ood`` entry).
* :mod:`medviz.ood.sources`: foreign images (other modalities on disk, generated pictures).
* :mod:`medviz.ood.fit`: ``python -m medviz fit-ood``: fit, measure, leave-one-source-out.
* :mod:`medviz.ood.reference`: the older penultimate-distance statistics (card
  ``reference``), still honoured for cards without a detector.

Nothing here imports TensorFlow at import time.
"""

from medviz.ood.detector import LayerReference, OodDetector
from medviz.ood.reference import ReferenceStats, distances, fit_reference

__all__ = ["LayerReference", "OodDetector", "ReferenceStats", "distances", "fit_reference"]
