"""The embedding map: how a network arranges a whole dataset split in its feature space.

:func:`embedding_map` runs a split through the model once (batched), keeps the
penultimate-layer features (the vector the classification layer reads) and the
calibrated predictions, and projects the features to 2-D with PCA (always
available, numpy/scikit-learn), UMAP (``umap-learn``, the ``explore`` extra,
imported only when chosen) or t-SNE (scikit-learn). Splits above a cap are
subsampled, stratified by class and seeded, and the result says so in its
:attr:`EmbeddingMap.note`. :func:`nearest_neighbours` finds the images of the
map closest to any feature vector by cosine similarity, so an uploaded image
(:func:`image_features`) can be placed among the images the model knows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from medviz.errors import MedvizError

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset
    from medviz.store import ModelBundle

Projection = Literal["pca", "umap", "tsne"]

PROJECTIONS: dict[str, str] = {
    "pca": "PCA (linear, fast, distances meaningful)",
    "umap": "UMAP (non-linear, keeps local neighbourhoods)",
    "tsne": "t-SNE (non-linear, clusters only; slow above a few thousand points)",
}
"""Projection methods and one line on each, in menu order."""

COLOUR_BY: dict[str, str] = {
    "true": "true class",
    "predicted": "predicted class",
    "correct": "correct / wrong",
    "confidence": "confidence",
}
"""What the points of the map can be coloured by."""

DEFAULT_LIMIT = 2000
"""Most points a map holds by default; larger splits are subsampled (stratified, seeded)."""

MAP_LIMITS = (
    "Each point is one image placed by the model's penultimate-layer features, so images the "
    "network treats alike lie close together and mistakes show where classes overlap. The 2-D "
    "projection distorts distances (above all UMAP and t-SNE, whose cluster sizes and gaps mean "
    "little) and says nothing about which pixels drove a decision: open a point's heatmap for "
    "that."
)
"""Two sentences on what the embedding map shows and what it cannot show."""

NEIGHBOUR_LIMITS = (
    "The strip shows the images whose penultimate features point in the most similar direction "
    "(cosine similarity in the full feature space, not on the 2-D map). Similar features mean "
    "the model treats the images alike, not that they share a diagnosis or look alike to a "
    "radiologist."
)
"""Two sentences on what the nearest-neighbour strip shows and what it cannot show."""


@dataclass(frozen=True)
class EmbeddingMap:
    """A dataset split as the model sees it, projected to 2-D.

    Attributes:
        coords: ``(n, 2)`` float32 projected positions.
        features: ``(n, D)`` float32 penultimate features, each row scaled to
            unit length (cosine similarity is a dot product).
        labels: ``(n,)`` int64 true classes.
        predictions: ``(n,)`` int64 decided classes (calibrated, card threshold).
        confidence: ``(n,)`` float32 calibrated probability of the decided class.
        correct: ``(n,)`` bool, ``predictions == labels``.
        indices: ``(n,)`` int64 positions of the points in the split's images.
        class_names: Class names, label order.
        split: The split mapped.
        method: The projection used (a key of :data:`PROJECTIONS`).
        layer: Name of the layer the features come from.
        n_total: Images in the split before subsampling.
        note: Subsampling and projection notes for people (empty when none).
        seconds: Time spent on features and projection.
    """

    coords: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray
    indices: np.ndarray
    class_names: tuple[str, ...]
    split: str
    method: str
    layer: str
    n_total: int
    note: str = ""
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def accuracy(self) -> float:
        """Fraction of mapped images whose decided class is the true one."""
        return float(self.correct.mean()) if len(self.correct) else float("nan")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary and per-point rows (``medviz embed --out map.json``)."""
        return {
            "split": self.split,
            "method": self.method,
            "layer": self.layer,
            "class_names": list(self.class_names),
            "n_points": len(self),
            "n_total": self.n_total,
            "accuracy": self.accuracy,
            "note": self.note,
            "seconds": round(self.seconds, 3),
            "limits": MAP_LIMITS,
            "points": [
                {
                    "index": int(i),
                    "x": round(float(x), 5),
                    "y": round(float(y), 5),
                    "true": self.class_names[int(t)],
                    "predicted": self.class_names[int(p)],
                    "confidence": round(float(c), 5),
                    "correct": bool(ok),
                }
                for i, (x, y), t, p, c, ok in zip(
                    self.indices,
                    self.coords,
                    self.labels,
                    self.predictions,
                    self.confidence,
                    self.correct,
                    strict=True,
                )
            ],
        }


@dataclass(frozen=True)
class Neighbours:
    """The points of a map nearest to a query in feature space.

    Attributes:
        rows: ``(k,)`` int64 rows of the map (index into its arrays), nearest first.
        indices: ``(k,)`` int64 positions of those images in the split.
        similarity: ``(k,)`` float32 cosine similarities in ``[-1, 1]``.
    """

    rows: np.ndarray
    indices: np.ndarray
    similarity: np.ndarray


def available_projections() -> dict[str, str]:
    """:data:`PROJECTIONS` whose package is installed here (PCA and t-SNE always are)."""
    import importlib.util

    out = dict(PROJECTIONS)
    if importlib.util.find_spec("umap") is None:
        out.pop("umap")
    return out


def _unit_rows(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def project(features: np.ndarray, *, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project feature vectors to 2-D.

    Features are standardised per dimension first, so a few large-valued units
    do not decide the map alone.

    Args:
        features: ``(n, D)`` float features, ``n >= 2``.
        method: ``"pca"``, ``"umap"`` or ``"tsne"``.
        seed: Seed of the stochastic methods (UMAP, t-SNE).

    Returns:
        ``(n, 2)`` float32 coordinates.

    Raises:
        ValueError: Unknown ``method`` or fewer than 2 points.
        MedvizError: UMAP was chosen but ``umap-learn`` is not installed.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"projection must be one of {list(PROJECTIONS)}, got {method!r}")
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need features (n >= 2, D), got shape {x.shape}")
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-8)
    n, dims = x.shape
    if method == "pca":
        # SVD of the centred data: the first two principal axes (deterministic up to sign,
        # fixed here so a rerun draws the same picture).
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        axes = vt[:2]
        axes = axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
        coords = x @ axes.T
        if coords.shape[1] < 2:  # one feature only
            coords = np.column_stack([coords[:, 0], np.zeros(n)])
        return coords.astype(np.float32)
    if method == "umap":
        try:
            import umap  # optional extra: pip install 'medviz[explore]'
        except ImportError:
            raise MedvizError(
                "UMAP needs the package umap-learn (pip install 'medviz[explore]'); "
                "choose PCA or t-SNE instead"
            ) from None
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=max(2, min(15, n - 1)),
            random_state=seed,
            # A fixed seed makes UMAP single-threaded anyway; say so to silence its warning.
            n_jobs=1,
        )
        return np.asarray(reducer.fit_transform(x), dtype=np.float32)
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    # t-SNE's usual first step: PCA to at most 50 dimensions keeps it fast and less noisy.
    if dims > 50 and n > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return np.asarray(tsne.fit_transform(x), dtype=np.float32)


def _stratified_sample(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``limit`` items, each class kept in proportion."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    chosen: list[np.ndarray] = []
    classes = np.unique(labels)
    for k in classes:
        members = np.flatnonzero(labels == k)
        take = max(1, round(limit * len(members) / n))
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    picked = np.concatenate(chosen)
    if len(picked) > limit:  # rounding up several small classes
        picked = rng.choice(picked, size=limit, replace=False)
    return np.sort(picked)


def _features_and_outputs(model, images: np.ndarray, *, batch_size: int):
    """Penultimate features ``(n, D)`` and raw outputs ``(n, K)`` in one pass per batch."""
    from medviz.ood.features import OUTPUT, PENULTIMATE, layer_features, penultimate_layer

    layer = penultimate_layer(model)
    if layer is None:
        raise MedvizError(
            f"cannot tell which layer of model {model.name!r} feeds its classification layer; "
            "the embedding map needs the penultimate features"
        )
    feats, outputs = layer_features(model, images, [PENULTIMATE, OUTPUT], batch_size=batch_size)
    return _named_layer(model, layer), feats, outputs


def _named_layer(model, name: str) -> str:
    """The layer worth naming: through Dropout (the identity at inference) to what it copies."""
    import keras

    layer = model.get_layer(name)
    while isinstance(layer, keras.layers.Dropout):
        source = getattr(getattr(layer.input, "_keras_history", None), "operation", None)
        if not isinstance(source, keras.layers.Layer) or isinstance(
            source, keras.layers.InputLayer
        ):
            break
        layer = source
    return layer.name


def _decide(bundle: ModelBundle, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decided classes and their calibrated probability (the app's one answer per image)."""
    from medviz.inference import calibrated_probabilities
    from medviz.metrics import as_class_probabilities

    probs = calibrated_probabilities(as_class_probabilities(outputs), bundle.card.temperature)
    predicted = np.asarray(bundle.decide(probs), dtype=np.int64)
    return predicted, probs[np.arange(len(predicted)), predicted].astype(np.float32)


def embedding_map(
    bundle: ModelBundle,
    data: Dataset,
    *,
    split: str = "val",
    method: str = "pca",
    limit: int | None = DEFAULT_LIMIT,
    seed: int = 0,
    batch_size: int = 64,
) -> EmbeddingMap:
    """Penultimate features of one split, their 2-D projection and the model's answers.

    Args:
        bundle: The model and its card (calibration temperature, threshold).
        data: A dataset at the model's input size and channels, labels in the
            model's class order (:func:`medviz.services.datasets.dataset_for_model`).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        method: A key of :data:`PROJECTIONS`.
        limit: Most points; larger splits are subsampled per class (``None``: all).
        seed: Seed of the subsample and of the stochastic projections.
        batch_size: Images per forward pass.

    Returns:
        The :class:`EmbeddingMap`.

    Raises:
        ValueError: Unknown ``method``, ``limit`` below 2.
        MedvizError: The split is missing or has fewer than 2 images, or the
            model's penultimate layer cannot be found.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"projection must be one of {list(PROJECTIONS)}, got {method!r}")
    if limit is not None and limit < 2:
        raise ValueError(f"limit must be at least 2 points (or None for all), got {limit}")
    started = time.perf_counter()
    subset = data if split == "all" else data.split(split)
    n_total = len(subset)
    if n_total < 2:
        raise MedvizError(
            f"the {split} split of {data.name!r} has {n_total} image(s); a map needs at least 2 "
            f"(splits there: {list(data.available_splits)})"
        )
    notes = []
    if limit is not None and n_total > limit:
        indices = _stratified_sample(subset.labels, limit, seed)
        notes.append(
            f"{len(indices)} of {n_total} images shown (a stratified random sample, seed {seed}): "
            f"maps above {limit} points get slow to draw and to project."
        )
    else:
        indices = np.arange(n_total)
    images = subset.images[indices]
    layer, feats, outputs = _features_and_outputs(bundle.model, images, batch_size=batch_size)
    predicted, confidence = _decide(bundle, outputs)
    labels = np.asarray(subset.labels[indices], dtype=np.int64)
    coords = project(feats, method=method, seed=seed)
    return EmbeddingMap(
        coords=coords,
        features=_unit_rows(feats),
        labels=labels,
        predictions=predicted,
        confidence=confidence,
        correct=predicted == labels,
        indices=indices.astype(np.int64),
        class_names=tuple(data.class_names),
        split=split,
        method=method,
        layer=layer,
        n_total=n_total,
        note=" ".join(notes),
        seconds=time.perf_counter() - started,
    )


def image_features(bundle: ModelBundle, images: np.ndarray) -> np.ndarray:
    """Unit-length penultimate features of model inputs, for :func:`nearest_neighbours`.

    Args:
        bundle: The model.
        images: ``(n, S, S, C)`` or one ``(S, S, C)`` model input, values in ``[0, 255]``.

    Returns:
        ``(n, D)`` float32 rows of unit length.
    """
    batch = np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    _, feats, _ = _features_and_outputs(bundle.model, batch, batch_size=64)
    return _unit_rows(feats)


def nearest_neighbours(
    emap: EmbeddingMap, query: np.ndarray, *, k: int = 8, exclude_row: int | None = None
) -> Neighbours:
    """The ``k`` points of ``emap`` most similar to ``query`` (cosine similarity).

    Args:
        emap: The map.
        query: ``(D,)`` or ``(1, D)`` feature vector (any length; it is normalised).
        k: How many neighbours.
        exclude_row: A row of the map to leave out (the query's own point).

    Returns:
        :class:`Neighbours`, nearest first.

    Raises:
        ValueError: ``query`` has another length than the map's features, or ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if q.shape[0] != emap.features.shape[1]:
        raise ValueError(
            f"query has {q.shape[0]} features, the map's model gives {emap.features.shape[1]}"
        )
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    sims = emap.features @ q
    if exclude_row is not None:
        sims = sims.copy()
        sims[exclude_row] = -np.inf
    order = np.argsort(-sims, kind="stable")
    order = order[np.isfinite(sims[order])][:k]
    return Neighbours(
        rows=order.astype(np.int64),
        indices=emap.indices[order],
        similarity=sims[order].astype(np.float32),
    )
