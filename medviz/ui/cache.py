"""Every caching decision of the app, in one place.

* ``st.cache_resource`` (one shared object per process, never copied) holds only
  immutable heavy things that any session may share: shipped/Hub models keyed by
  folder and modification time, their compiled explainers, registry datasets
  keyed by their load arguments, uploaded datasets keyed by content digest.
* ``st.cache_data`` (pickled copies) holds small derived results: health reports,
  evaluations, explanations, architecture summaries. Keys of per-session models
  are random ids, so one session can never hit another session's entries.
* Models trained or uploaded in a session are *not* cached here: they live in
  that session's :class:`~medviz.ui.state.ModelEntry`.

Callers treat every returned dataset and model as read-only.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from medviz.errors import DataError, ModelError
from medviz.ui import settings
from medviz.ui.state import DatasetChoice, ModelEntry

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset, HealthReport
    from medviz.explain import Explainer, Explanation
    from medviz.metrics import Evaluation
    from medviz.store import ModelBundle, ModelCard
    from medviz.stress import StressReport

MODEL_FILES = ("model.keras", "card.json", "README.md")


# --- shipped models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShippedModel:
    """A model folder under ``models/``: its name, path and card (``None`` if unreadable)."""

    name: str
    path: str
    card: ModelCard | None
    problem: str | None = None

    @property
    def key(self) -> str:
        return f"shipped:{self.name}"


def shipped_models() -> list[ShippedModel]:
    """The model folders under :func:`~medviz.ui.settings.models_dir`, found afresh every run.

    Only ``card.json`` is read (no TensorFlow), so listing is instant and models
    another process adds appear without a restart.
    """
    from medviz.store import ModelCard

    root = settings.models_dir()
    found: list[ShippedModel] = []
    if not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (folder / "model.keras").exists():
            continue
        card_file = folder / "card.json"
        try:
            card = ModelCard.from_dict(json.loads(card_file.read_text(encoding="utf-8")))
            found.append(ShippedModel(folder.name, str(folder), card))
        except (OSError, ValueError) as err:  # missing/malformed card: listed, not usable
            found.append(ShippedModel(folder.name, str(folder), None, f"card unreadable: {err}"))
    return found


def shipped_model(name: str) -> ShippedModel | None:
    """The shipped model called ``name``."""
    return next((m for m in shipped_models() if m.name == name), None)


def shipped_entry(model: ShippedModel) -> ModelEntry:
    """A session entry for a shipped model (the model itself stays in the shared cache)."""
    if model.card is None:
        raise ModelError(f"shipped model {model.name!r} cannot be used: {model.problem}")
    return ModelEntry(
        key=model.key,
        title=model.card.title or model.name,
        origin="shipped",
        card=model.card,
        path=model.path,
    )


def _version(folder: str) -> float:
    """Newest modification time of a model folder's files (changes when it is re-saved)."""
    times = [p.stat().st_mtime for p in (Path(folder) / f for f in MODEL_FILES) if p.exists()]
    return max(times, default=0.0)


@st.cache_resource(max_entries=8, show_spinner=False)
def _load_bundle(path: str, version: float) -> ModelBundle:
    from medviz.store import load_bundle

    del version  # part of the cache key only
    return load_bundle(path, safe_mode=True)


@st.cache_resource(max_entries=8, show_spinner=False)
def _shared_explainer(path: str, version: float) -> Explainer:
    from medviz.explain import Explainer
    from medviz.services.predict import warm_up

    bundle = _load_bundle(path, version)
    explainer = Explainer(bundle.model)
    warm_up(explainer, bundle.card)
    return explainer


def model_token(entry: ModelEntry) -> str:
    """Cache key of a model: its key plus, for folders on disk, their modification time."""
    return f"{entry.key}@{_version(entry.path)}" if entry.path else entry.key


def bundle(entry: ModelEntry) -> ModelBundle:
    """The loaded model of ``entry`` (shared cache for folders, the entry's own otherwise)."""
    if entry.bundle is not None:
        return entry.bundle
    if entry.path is None:
        raise ModelError(f"model {entry.title!r} has neither a folder nor a loaded model")
    return _load_bundle(entry.path, _version(entry.path))


def explainer(entry: ModelEntry) -> Explainer:
    """The warmed-up :class:`~medviz.explain.Explainer` of ``entry``'s model."""
    if entry.path is not None and entry.bundle is None:
        return _shared_explainer(entry.path, _version(entry.path))
    cached = entry.info.get("explainer")
    if cached is None:
        from medviz.explain import Explainer
        from medviz.services.predict import warm_up

        cached = Explainer(bundle(entry).model)
        warm_up(cached, entry.card)
        entry.info["explainer"] = cached
    return cached


@st.cache_resource(show_spinner=False)
def _preloaded(tokens: tuple[str, ...]) -> int:
    count = 0
    for model in shipped_models():
        if model.card is not None and f"{model.key}@{_version(model.path)}" in tokens:
            _shared_explainer(model.path, _version(model.path))
            count += 1
    return count


def preload_shipped() -> int:
    """Load and warm every shipped model once per process (demo mode); returns how many."""
    tokens = tuple(f"{m.key}@{_version(m.path)}" for m in shipped_models() if m.card is not None)
    return _preloaded(tokens)


# --- datasets ------------------------------------------------------------------------------------


@st.cache_resource(max_entries=12, show_spinner=False)
def _load_source(
    source: str,
    image_size: int | None,
    channels: int | None,
    limit: int | None,
    seed: int,
    group_pattern: str | None = None,
) -> Dataset:
    from medviz.data import load_dataset

    return load_dataset(
        source,
        image_size=image_size,
        channels=channels,
        seed=seed,
        limit_per_class=limit,
        group_pattern=group_pattern,
    )


@st.cache_resource(max_entries=6, show_spinner=False)
def _load_upload(
    digest: str,
    name: str,
    image_size: int | None,
    channels: int | None,
    limit: int | None,
    seed: int,
    _data: bytes,
    group_pattern: str | None = None,
) -> Dataset:
    from medviz.services.uploads import load_uploaded_dataset

    del digest  # the cache key; _data is not hashed
    return load_uploaded_dataset(
        _data,
        name=name,
        image_size=image_size,
        channels=channels,
        limit_per_class=limit,
        seed=seed,
        group_pattern=group_pattern,
    )


def dataset(
    choice: DatasetChoice, *, image_size: int | None = None, channels: int | None = None
) -> Dataset:
    """Load (or fetch from the cache) the dataset of ``choice``.

    Args:
        choice: What the user picked.
        image_size: Override the choice's image size (e.g. a model's input size).
        channels: Override the choice's channel count.

    Raises:
        DataError: Unreadable data, or an upload this session no longer holds.
        OfflineError: A MedMNIST file that is not cached.
    """
    size = image_size or choice.image_size
    chans = channels or choice.channels
    if choice.kind == "upload":
        from medviz.ui.state import upload_bytes

        data = upload_bytes(choice.digest or "")
        if data is None:
            raise DataError(f"the uploaded file {choice.label!r} is gone; upload it again")
        return _load_upload(
            choice.digest or "",
            choice.source,
            size,
            chans,
            choice.limit_per_class,
            choice.seed,
            data,
            choice.group_pattern,
        )
    return _load_source(
        choice.source, size, chans, choice.limit_per_class, choice.seed, choice.group_pattern
    )


def dataset_for_model(
    choice: DatasetChoice, card: ModelCard, *, classes: str | None = None
) -> Dataset:
    """``choice`` loaded at the model's input size and channels, labels in the model's order.

    :func:`medviz.services.datasets.dataset_for_model` (the CLI's too) on the
    dataset loaded through the shared cache, uploads included. ``classes``
    ("normal,pneumonia" or "0=normal,…") first renames the data's classes.

    Raises:
        MedvizError: The class names of data and model do not match (the message
            lists both), or ``classes`` does not fit the data.
    """
    from medviz.services import datasets

    data = dataset(choice, image_size=card.image_size, channels=card.channels)
    return datasets.dataset_for_model(data, card, classes=classes)


@st.cache_data(max_entries=16, show_spinner=False)
def health(key: str, _data: Dataset) -> HealthReport:
    """The health report of a dataset, cached by its choice key."""
    from medviz.data import health_report

    del key
    return health_report(_data)


# --- results -------------------------------------------------------------------------------------


@st.cache_data(max_entries=48, show_spinner=False)
def evaluation(
    token: str, data_key: str, split: str, n_bootstrap: int, _bundle: Any, _data: Dataset
) -> Evaluation:
    """Evaluate a model on one split (with its card's threshold and temperature)."""
    from medviz.pipeline import evaluate_split

    del token, data_key
    return evaluate_split(_bundle, _data, split, n_bootstrap=n_bootstrap)


@st.cache_data(max_entries=16, show_spinner=False)
def stress(
    token: str, data_key: str, split: str, max_images: int, _bundle: Any, _data: Dataset
) -> StressReport:
    """Stress-test a model on a seeded sample of one split (card threshold and temperature)."""
    from medviz.stress import stress_split

    del token, data_key
    return stress_split(_bundle, _data, split, max_images=max_images)


@st.cache_data(max_entries=16, show_spinner=False)
def baseline(data_key: str, split: str, threshold: int, _data: Dataset) -> Evaluation:
    """The pixel-threshold baseline fitted on train, evaluated on ``split`` (per data key)."""
    from medviz.baseline import evaluate_baseline

    del data_key
    return evaluate_baseline(_data, split=split, threshold=threshold, n_bootstrap=200)


@st.cache_data(max_entries=96, show_spinner=False)
def explanation(
    token: str,
    image_digest: str,
    method: str,
    class_index: int | None,
    layer: str | None,
    _explainer: Any,
    _image: np.ndarray,
    *,
    mirror: bool = False,
) -> Explanation:
    """One heatmap, cached by model, image content, method, class, layer and mirroring."""
    from medviz.explain import METHODS

    del token, image_digest
    return _explainer.explain(
        _image,
        method=method,
        class_index=class_index,
        layer=layer if METHODS[method].needs_layer else None,
        mirror=mirror,
    )


def image_digest(image: np.ndarray) -> str:
    """Content hash of an image array (cache keys)."""
    arr = np.ascontiguousarray(image)
    return hashlib.sha1(arr.tobytes() + str(arr.shape).encode()).hexdigest()


@st.cache_data(max_entries=32, show_spinner=False)
def architecture_summary(
    arch: str, image_size: int, channels: int, n_classes: int
) -> tuple[list[dict[str, Any]], int, int]:
    """Layer table rows and ``(trainable, total)`` parameters of an architecture.

    Transfer backbones are built without ImageNet weights: the shapes and counts
    are the same and nothing is downloaded.
    """
    from medviz.zoo import ARCHITECTURES, build_model, layer_table, parameter_counts

    options = {"pretrained": False} if ARCHITECTURES[arch].transfer else {}
    model = build_model(arch, (image_size, image_size, channels), n_classes, **options)
    rows = [
        {
            "layer": r.name,
            "type": r.kind,
            "output shape": str(tuple(r.output_shape)).replace("None", "batch"),
            "parameters": r.params,
            "trainable": r.trainable,
        }
        for r in layer_table(model)
    ]
    trainable, total = parameter_counts(model)
    return rows, trainable, total


# --- examples and downloads ----------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """An embedded example image: PNG bytes (decoded like an upload) and its true class."""

    name: str
    png: bytes
    label: str


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    arr = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buffer, format="PNG")
    return buffer.getvalue()


@st.cache_resource(max_entries=8, show_spinner=False)
def _examples(source: str, image_size: int, channels: int, per_class: int) -> tuple[Example, ...]:
    from medviz.data import load_dataset

    data = load_dataset(source, image_size=image_size, channels=channels, limit_per_class=24)
    held_out = data.split("test") if "test" in data.available_splits else data
    out: list[Example] = []
    for k, name in enumerate(held_out.class_names):
        for j, i in enumerate(np.flatnonzero(held_out.labels == k)[:per_class]):
            out.append(Example(f"{name} {j + 1}", _png(held_out.images[i]), name))
    return tuple(out)


def examples_for(card: ModelCard, *, per_class: int = 3) -> tuple[Example, ...]:
    """Held-out example images for a model: from its training dataset when it is embedded
    or available locally, else from the embedded synthetic data when the classes match.
    """
    from medviz.data import DATASETS, DEFAULT_DATASET
    from medviz.metrics import normalize_class_name

    wanted = {normalize_class_name(c) for c in card.class_names}
    candidates = [card.facts.dataset, DEFAULT_DATASET]
    for name in candidates:
        spec = DATASETS.get(name)
        if spec is None or not spec.is_available():
            continue
        if {normalize_class_name(c) for c in spec.class_names} != wanted:
            continue
        try:
            return _examples(name, card.image_size, card.channels, per_class)
        except (DataError, OSError):
            continue
    return ()


def _zip_folder(path: str) -> bytes:
    buffer = io.BytesIO()
    folder = Path(path)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in MODEL_FILES:
            if (folder / name).exists():
                archive.write(folder / name, arcname=f"{folder.name}/{name}")
    return buffer.getvalue()


def model_zip(entry: ModelEntry) -> bytes:
    """The model folder (``model.keras``, ``card.json``, ``README.md``) as zip bytes.

    Uses no Streamlit call, so it can run as a download button's deferred callable.
    """
    if entry.path is not None and entry.bundle is None:
        return _zip_folder(entry.path)
    cached = entry.info.get("zip")
    if cached is None:
        from medviz.store import save_bundle

        loaded = bundle(entry)
        with tempfile.TemporaryDirectory(prefix="medviz-zip-") as tmp:
            safe = re.sub(r"[^A-Za-z0-9._-]+", "-", entry.card.name).strip("-.") or "model"
            folder = save_bundle(loaded.model, entry.card, Path(tmp) / safe)
            cached = _zip_folder(str(folder))
        entry.info["zip"] = cached
    return cached
