"""The data half of a training recipe: which dataset, with which class names and extra images.

A config file for ``medviz train --config`` can name its data beside its
``TrainConfig`` fields (an experiment file, :mod:`medviz.experiments`, or a
shipped model's recipe in ``tools/make_models/configs``)::

    dataset:
      name: brain-mri                # registry name
      channels: 1
      class_names: [glioma, meningioma, notumor, pituitary]   # optional display names
      lesion_data: brain-tumor-boxes  # optional: images with lesion masks to join
    config:
      arch: res-cnn-loc
      ...

so one file rebuilds a model through the public command, data preparation
included: ``medviz train --config FILE --out DIR``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medviz.data.dataset import Dataset, rename_classes
from medviz.errors import DataError


@dataclass(frozen=True)
class DataRecipe:
    """How to load a recipe's training data.

    Attributes:
        name: Registry name of the dataset (:data:`medviz.data.DATASETS`).
        channels: Channels to load (``None``: the dataset's own).
        class_names: Names replacing the data's class names, in label order
            (see :func:`medviz.data.dataset.rename_classes`), or ``None``.
        lesion_data: Registry name of a dataset with lesion masks whose images
            join the training data (:func:`medviz.data.boxes.merge_lesion_data`,
            for box-guided training), or ``None``.
    """

    name: str
    channels: int | None = None
    class_names: tuple[str, ...] | None = None
    lesion_data: str | None = None

    def __post_init__(self) -> None:
        from medviz.data.registry import DATASETS

        for field, value in (("name", self.name), ("lesion_data", self.lesion_data)):
            if value is not None and value not in DATASETS:
                raise DataError(
                    f"dataset.{field} must be a registered dataset, got {value!r}; "
                    f"registered: {sorted(DATASETS)}"
                )
        if self.channels not in (None, 1, 3):
            raise DataError(f"dataset.channels must be 1 or 3, got {self.channels!r}")


_KEYS = {"name", "channels", "class_names", "lesion_data"}


def data_recipe_from_file(path: str | Path) -> DataRecipe | None:
    """The ``dataset`` block of a config file whose ``TrainConfig`` fields sit under ``config``.

    Args:
        path: A JSON or YAML config file.

    Returns:
        The data recipe, or ``None`` when the file names no dataset (plain
        ``TrainConfig`` fields, a card).

    Raises:
        DataError: Unreadable file, or a ``dataset`` block that is not a mapping
            with a ``name``, or holds other keys than name, channels,
            class_names, lesion_data (experiment files may add ``split``).
    """
    from medviz.config_files import read_mapping

    file = Path(path)
    values = read_mapping(file)
    if not isinstance(values.get("config"), dict):
        return None
    block = values.get("dataset")
    if block is None:
        return None
    if not isinstance(block, dict) or "name" not in block:
        raise DataError(f"{file}: dataset must be a mapping with a 'name', got {block!r}")
    unknown = sorted(set(block) - _KEYS - {"split"})  # experiments describe their split in words
    if unknown:
        raise DataError(f"{file}: unknown dataset key(s) {unknown}; allowed: {sorted(_KEYS)}")
    names = block.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(names)):
        raise DataError(f"{file}: dataset.class_names must be a list of names, got {names!r}")
    return DataRecipe(
        name=str(block["name"]),
        channels=block.get("channels"),
        class_names=tuple(str(n) for n in names) if names is not None else None,
        lesion_data=block.get("lesion_data"),
    )


def load_recipe_data(
    recipe: DataRecipe,
    *,
    image_size: int | None,
    seed: int = 0,
    channels: int | None = None,
    limit_per_class: int | None = None,
    group_pattern: str | None = None,
    stream: bool = False,
) -> Dataset:
    """Load ``recipe``'s dataset, rename its classes and join its lesion images.

    Args:
        recipe: What to load.
        image_size: Side the images are resized to (``None``: the dataset's).
        seed: Seed of the splits (and of the lesion merge's splits).
        channels: Overrides ``recipe.channels`` when given.
        limit_per_class: At most this many images per class (of each source).
        group_pattern: Patient-id pattern (see :func:`medviz.data.load_dataset`).
        stream: Stream from a disk cache (not with ``lesion_data``: the merge
            regroups every image in memory).

    Returns:
        ``(N, S, S, C)`` dataset; with ``lesion_data``, ``N`` counts both sources
        and ``masks`` is set.

    Raises:
        DataError: The class names do not fit the data, or ``stream`` with
            ``lesion_data``.
    """
    from medviz.data import load_dataset

    if stream and recipe.lesion_data:
        raise DataError(
            f"dataset.lesion_data {recipe.lesion_data!r} joins images in memory; "
            "train without --stream"
        )
    channels = channels or recipe.channels
    common = {"image_size": image_size, "channels": channels, "seed": seed}
    data = load_dataset(
        recipe.name,
        **common,
        limit_per_class=limit_per_class,
        group_pattern=group_pattern,
        stream=stream,
    )
    if recipe.class_names is not None:
        data = rename_classes(data, recipe.class_names)
    if recipe.lesion_data is not None:
        from medviz.data.boxes import merge_lesion_data

        lesions = load_dataset(recipe.lesion_data, **common, limit_per_class=limit_per_class)
        data = merge_lesion_data(data, lesions, seed=seed)
    return data
