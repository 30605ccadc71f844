"""Cross-dataset class matching by normalised name."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medviz.errors import MedvizError

# --------------------------------------------------------------------------- #
# Cross-dataset class matching
# --------------------------------------------------------------------------- #


def normalize_class_name(name: str) -> str:
    """Casefold and drop ``_``, ``-`` and whitespace: ``"No Tumor"`` -> ``"notumor"``."""
    return "".join(ch for ch in str(name).casefold() if ch not in "_-" and not ch.isspace())


def match_classes(model_classes: Sequence[str], data_classes: Sequence[str]) -> np.ndarray:
    """Map each data class to the model class of the same (normalised) name.

    Args:
        model_classes: Class names the model was trained on, in output order.
        data_classes: Class names of the dataset to evaluate on.

    Returns:
        ``(len(data_classes),)`` int array: entry ``j`` is the model output index
        of data class ``j`` (a permutation), so ``mapping[labels]`` turns data
        labels into model labels.

    Raises:
        MedvizError: The normalised name sets differ or a name repeats after
            normalisation; the message lists both class sets verbatim.
    """
    model_norm = [normalize_class_name(c) for c in model_classes]
    data_norm = [normalize_class_name(c) for c in data_classes]
    both = f"model classes {list(model_classes)}, data classes {list(data_classes)}"
    for which, norm in (("model", model_norm), ("data", data_norm)):
        if len(set(norm)) != len(norm):
            raise MedvizError(f"{which} class names repeat after normalisation: {both}")
    if set(model_norm) != set(data_norm):
        missing = sorted(set(data_norm) - set(model_norm))
        extra = sorted(set(model_norm) - set(data_norm))
        raise MedvizError(
            f"class names do not match: {both} "
            f"(unknown to the model: {missing}; not in the data: {extra})"
        )
    index = {name: i for i, name in enumerate(model_norm)}
    return np.array([index[name] for name in data_norm], dtype=np.int64)
