"""The Classify page's predict path: a re-export of :mod:`medviz.services.predict`.

The logic (calibration, threshold, OOD and modality warnings) lives in
:mod:`medviz.services.predict` so that ``python -m medviz predict`` gives the
same answers and warnings; this module keeps the page's imports stable.
"""

from __future__ import annotations

from medviz.ood.features import penultimate_layer
from medviz.services.predict import (
    DICOM_DISPLAY_FIELDS,
    MODALITY_NAMES,
    MODALITY_WORDS,
    Classification,
    OodCheck,
    calibrated,
    classify,
    decode_upload,
    display_meta,
    modality_warning,
    ood_check,
    warm_up,
)

__all__ = [
    "DICOM_DISPLAY_FIELDS",
    "MODALITY_NAMES",
    "MODALITY_WORDS",
    "Classification",
    "OodCheck",
    "calibrated",
    "classify",
    "decode_upload",
    "display_meta",
    "modality_warning",
    "ood_check",
    "penultimate_layer",
    "warm_up",
]
