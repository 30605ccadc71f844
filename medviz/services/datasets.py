"""A dataset as a model sees it: the one resolution of "this data for that model".

``python -m medviz evaluate/stress/…`` and the app's Evaluate page both call
:func:`dataset_for_model`: the data at the model's input size and channels,
optionally with its classes renamed, and its labels remapped to the model's
class order (classes matched by normalised name). The app passes a dataset it
loaded through its cache; the CLI passes a name or path.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from medviz.errors import DataError, MedvizError

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset
    from medviz.store import ModelCard


def dataset_for_model(
    source: str | Dataset,
    card: ModelCard,
    *,
    limit_per_class: int | None = None,
    classes: str | None = None,
    group_pattern: str | None = None,
    seed: int | None = None,
    mismatch_hint: str | None = None,
) -> Dataset:
    """``source`` at the model's input size and channels, labels in the model's order.

    Args:
        source: A dataset name, folder, file or URL (loaded here with
            :func:`medviz.data.load_dataset`), or a :class:`~medviz.data.Dataset`
            already loaded at the model's input size and channels (the app's cache).
        card: The model's card: input size, channels and class names.
        limit_per_class: Cap of images per class and split (a source only).
        classes: Names for the data's classes ("normal,pneumonia" or
            "0=normal,1=pneumonia", see :func:`medviz.data.dataset.rename_classes`),
            applied before matching; blank means none.
        group_pattern: Regular expression reading patient ids from file names
            (a source only).
        seed: Seed of generated data and of splits the source lacks (a source
            only; default 0).
        mismatch_hint: Appended to the class-mismatch error when ``classes`` was
            not given (the CLI names its ``--classes`` option there).

    Returns:
        A dataset whose images are ``(N, S, S, C)`` uint8 with the card's ``S``
        and ``C``, whose ``class_names`` are the card's and whose labels index them.

    Raises:
        ValueError: A loaded ``source`` came with source-only options.
        DataError: A loaded ``source`` is not at the model's input size or channels.
        MedvizError: The classes of data and model do not match (the message
            lists both), or ``classes`` does not fit the data.
    """
    from medviz.data import Dataset, load_dataset
    from medviz.data.dataset import rename_classes
    from medviz.metrics import match_classes

    if isinstance(source, Dataset):
        given = {
            "limit_per_class": limit_per_class,
            "group_pattern": group_pattern,
            "seed": seed,
        }
        extra = sorted(k for k, v in given.items() if v is not None)
        if extra:
            raise ValueError(
                f"{extra} only apply when dataset_for_model loads a source; got a loaded "
                f"dataset {source.name!r}"
            )
        data = source
        want = (card.image_size, card.image_size, card.channels)
        if tuple(data.image_shape) != want:
            raise DataError(
                f"dataset {data.name!r} has images of {tuple(data.image_shape)}; the model "
                f"{card.name!r} needs {want}"
            )
    else:
        data = load_dataset(
            source,
            image_size=card.image_size,
            channels=card.channels,
            limit_per_class=limit_per_class,
            group_pattern=group_pattern,
            seed=0 if seed is None else seed,
        )
    named = bool(classes and classes.strip())
    if named:
        data = rename_classes(data, classes)
    try:
        mapping = match_classes(card.class_names, data.class_names)
    except MedvizError as err:
        if named or not mismatch_hint:
            raise
        raise MedvizError(f"{err}; {mismatch_hint}") from None
    return replace(data, labels=mapping[data.labels], class_names=tuple(card.class_names))
