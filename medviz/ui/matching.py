"""Does a dataset fit the active model? Asked before a feature loads data and runs on it.

Features such as lesion localisation (Explain) or an evaluation (Evaluate) load
a dataset at the model's input size and then spend seconds to minutes on it; a
dataset with other classes used to fail only at the end. :func:`check_choice`
answers from what is known without that work (the registry entry, or the copy
the Data page already loaded and cached) and returns the sentence to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from medviz.store import ModelCard
    from medviz.ui.state import DatasetChoice


@dataclass(frozen=True)
class DatasetOutline:
    """What a dataset is, known without loading it at the model's input size.

    Attributes:
        label: Name shown to people.
        class_names: Its classes in label order.
        image_size: Side length its images are loaded at (``None``: unknown).
        channels: 1 or 3 (``None``: unknown).
    """

    label: str
    class_names: tuple[str, ...]
    image_size: int | None = None
    channels: int | None = None


def _colour(channels: int | None) -> str:
    return {1: "grey", 3: "RGB"}.get(channels or 0, f"{channels}-channel")


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def dataset_mismatch(
    card: ModelCard, outline: DatasetOutline, *, feature: str, check_input: bool = True
) -> str | None:
    """Why ``outline`` does not fit the model of ``card`` for ``feature``, or ``None``.

    Classes are compared by name (case, ``_``, ``-`` and spaces ignored, order
    free), as :func:`medviz.metrics.match_classes` maps them.

    Args:
        card: The model's card (classes, input size and channels).
        outline: The dataset.
        feature: What needs the match, e.g. ``"Lesion localisation"`` (starts the sentence).
        check_input: Also require the model's image size and channels (features
            that use the images as loaded; not Evaluate, which reloads them at the
            model's size on purpose for cross-dataset tests).

    Returns:
        One message naming what differs, both sides and what to do; ``None`` when it fits.
    """
    from medviz.metrics import normalize_class_name

    problems = []
    model_classes = [normalize_class_name(c) for c in card.class_names]
    data_classes = [normalize_class_name(c) for c in outline.class_names]
    if sorted(model_classes) != sorted(data_classes):
        problems.append(
            f"class names do not match: {outline.label} has {_names(outline.class_names)}, "
            f"the model has {_names(card.class_names)}"
        )
    if check_input:
        size, channels = outline.image_size, outline.channels
        if (size is not None and size != card.image_size) or (
            channels is not None and channels != card.channels
        ):
            shown_size = f"{size}×{size}" if size is not None else "its own size"
            problems.append(
                f"{outline.label} is loaded at {shown_size} {_colour(channels)}, the model "
                f"takes {card.image_size}×{card.image_size} {_colour(card.channels)}"
            )
    if not problems:
        return None
    return (
        f"{feature} needs a dataset that matches the model, and "
        + "; and ".join(problems)
        + ". Choose a matching dataset on the Data page (or a matching model)."
    )


def outline_of(choice: DatasetChoice) -> DatasetOutline:
    """What ``choice`` is: from its registry entry, else from the copy the Data page loaded.

    Registry datasets are described without reading a file. Folders and uploads
    come from :func:`medviz.ui.cache.dataset` at the choice's own size: the copy
    the Data page already cached, so this does not reload them.

    Raises:
        MedvizError: The dataset cannot be read (only for non-registry choices).
    """
    from medviz.data import DATASETS

    spec = DATASETS.get(choice.registry_name or "")
    if spec is not None:
        return DatasetOutline(
            label=choice.label,
            class_names=tuple(spec.class_names),
            image_size=choice.image_size or spec.image_size,
            channels=choice.channels or spec.channels,
        )
    from medviz.ui import cache

    data = cache.dataset(choice)
    return DatasetOutline(
        label=choice.label,
        class_names=tuple(data.class_names),
        image_size=int(data.images.shape[1]),
        channels=int(data.images.shape[-1]),
    )


def check_choice(
    choice: DatasetChoice, card: ModelCard, *, feature: str, check_input: bool = True
) -> str | None:
    """:func:`dataset_mismatch` of a dataset choice (see :func:`outline_of`)."""
    return dataset_mismatch(card, outline_of(choice), feature=feature, check_input=check_input)


def localisation_choice(card: ModelCard) -> DatasetChoice:
    """The dataset lesion localisation runs on: the session's, else the model's own.

    Without a chosen dataset it is the model's training dataset when that is a
    registry dataset present here (at the model's size), else the embedded one.
    """
    from medviz.data import DATASETS
    from medviz.ui import state

    chosen = state.active_dataset()
    if chosen is not None:
        return chosen
    trained_on = card.facts.dataset
    spec = DATASETS.get(trained_on)
    if spec is not None and spec.is_available():
        return state.DatasetChoice(
            "registry", trained_on, trained_on, card.image_size, card.channels
        )
    return state.default_dataset_choice()
