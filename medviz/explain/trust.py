"""Evidence about whether a heatmap can be trusted.

* :func:`sanity_check`: model-randomisation test (Adebayo et al., *Sanity
  Checks for Saliency Maps*, NeurIPS 2018). A map that hardly changes when
  the top layers are re-initialised explains the image, not the model.
* :func:`deletion_insertion`: faithfulness curves (Petsiuk et al., RISE,
  BMVC 2018). Removing the most important pixels first should make the
  class probability fall fast (small deletion AUC); adding them first to a
  blurred image should make it rise fast (large insertion AUC).
* :func:`cam_agreement`: rank correlation between the CAM methods.
* :func:`pointing_game`, :func:`topk_iou`, :func:`localization_score`:
  localisation against ground-truth lesion masks or boxes (Zhang et al.,
  pointing game, ECCV 2016), aggregated over a dataset with bootstrap CIs,
  next to the centre-point and random-point baselines.

Checks of single heatmaps that can fail on real images (mass on the body,
agreement across method families) are in :mod:`medviz.explain.checks`.

Why one module (over 600 lines): every number here shares the same map, mask
and bootstrap conventions and is reported side by side; the pass/fail checks
built on them live in :mod:`medviz.explain.checks`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage, stats

from medviz.errors import DataError, ModelError
from medviz.explain.engine import Explainer, get_explainer
from medviz.explain.layers import resolve_cam_layer
from medviz.explain.methods import METHODS, canonical_method, run_method
from medviz.explain.saliency import Baseline, baseline_image
from medviz.metrics import normalize_class_name
from medviz.metrics.bootstrap import bootstrap_ci


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps of the same shape.

    Returns 0.0 when either map is constant (it shares no ranking with
    anything), instead of NaN.
    """
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise DataError(f"maps must have the same shape, got {a.shape} and {b.shape}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(stats.spearmanr(a, b)[0])


# ------------------------------------------------------------ randomisation
@dataclass(frozen=True, eq=False)
class SanityCheck:
    """Result of the model-randomisation sanity check.

    Attributes:
        method: Heatmap method.
        layer: Explained layer (``None`` for input-space methods).
        class_index: Explained class (the same on both models).
        randomized_layers: Names of the re-initialised layers, top first.
        correlation: Spearman correlation between the original and the
            randomised map; near 1 is a warning sign, near 0 (or negative)
            means the map depends on the learned weights.
        original: ``(H, W)`` heatmap of the trained model.
        randomized: ``(H, W)`` heatmap of the randomised model.
        seconds: Wall time.
    """

    method: str
    layer: str | None
    class_index: int
    randomized_layers: tuple[str, ...]
    correlation: float
    original: np.ndarray
    randomized: np.ndarray
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the map changed clearly (correlation below 0.5)."""
        return self.correlation < 0.5


def _fan_in(name: str, shape: tuple[int, ...]) -> int:
    if "depthwise" in name and len(shape) == 4:
        return max(1, shape[0] * shape[1])
    return max(1, int(np.prod(shape[:-1])))


def randomized_copy(model, *, top_n: int = 2, seed: int = 0):
    """A copy of ``model`` with its top ``top_n`` weighted layers re-initialised.

    Kernels get He-normal values (``N(0, 2 / fan_in)``), biases and BN shifts
    zeros, BN scales ones; BN moving statistics are kept. The original model
    is not touched.

    Args:
        model: A ``keras.Model``.
        top_n: How many layers with trainable weights, counted from the output.
        seed: Seed of the new weights.

    Returns:
        ``(copy, names of the re-initialised layers, top first)``.

    Raises:
        ModelError: ``top_n`` < 1.
    """
    import keras

    if top_n < 1:
        raise ModelError(f"top_n must be >= 1, got {top_n}")
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    weighted = [layer for layer in clone.layers if layer.trainable_weights][::-1][:top_n]
    for layer in weighted:
        for var in layer.trainable_weights:
            shape = tuple(var.shape)
            name = var.name.lower()
            if len(shape) >= 2:
                std = np.sqrt(2.0 / _fan_in(name, shape))
                value = rng.normal(0.0, std, size=shape)
            elif "gamma" in name:
                value = np.ones(shape)
            else:
                value = np.zeros(shape)
            var.assign(value.astype(np.dtype(var.dtype)))
    return clone, tuple(layer.name for layer in weighted)


def sanity_check(
    model,
    image: np.ndarray,
    *,
    method: str = "gradcam",
    class_index: int | None = None,
    layer: str | None = None,
    top_n: int = 2,
    seed: int = 0,
    **options,
) -> SanityCheck:
    """Model-randomisation sanity check of one heatmap.

    Args:
        model: A ``keras.Model`` (or its Explainer).
        image: One image, ``(H, W, C)`` or ``(1, H, W, C)`` in ``[0, 255]``.
        method: Heatmap method name.
        class_index: Class to explain (default: predicted by the trained model;
            the randomised model explains the same class).
        layer: CAM layer (default: the default CAM layer).
        top_n: Layers with weights to re-initialise, from the output down.
        seed: Seed of the random weights.
        **options: Method options.

    Returns:
        A :class:`SanityCheck`.
    """
    started = time.perf_counter()
    explainer = get_explainer(model)
    key = canonical_method(method)
    original = run_method(
        explainer, image, method=key, class_index=class_index, layer=layer, **options
    )
    clone, names = randomized_copy(explainer.model, top_n=top_n, seed=seed)
    randomized = run_method(
        Explainer(clone),
        image,
        method=key,
        class_index=original.class_index,
        layer=original.layer,
        **options,
    )
    return SanityCheck(
        method=key,
        layer=original.layer,
        class_index=original.class_index,
        randomized_layers=names,
        correlation=spearman(original.heatmap, randomized.heatmap),
        original=original.heatmap,
        randomized=randomized.heatmap,
        seconds=time.perf_counter() - started,
    )


# ------------------------------------------------------------ faithfulness
@dataclass(frozen=True, eq=False)
class FaithfulnessCurves:
    """Deletion and insertion curves of one heatmap.

    Attributes:
        class_index: Class whose probability is tracked.
        fractions: ``(S + 1,)`` share of pixels removed / inserted, 0 to 1.
        deletion: ``(S + 1,)`` class probability as the most important pixels
            are replaced by the baseline.
        insertion: ``(S + 1,)`` class probability as the most important pixels
            are copied into the baseline.
        deletion_auc: Area under the deletion curve (lower is better).
        insertion_auc: Area under the insertion curve (higher is better).
        baseline: What removed pixels are replaced with.
    """

    class_index: int
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    baseline: str

    @property
    def difference(self) -> float:
        """``insertion_auc - deletion_auc``; positive for a faithful map."""
        return self.insertion_auc - self.deletion_auc


def deletion_insertion(
    model,
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    class_index: int | None = None,
    steps: int = 32,
    baseline: Baseline | float = "blur",
) -> FaithfulnessCurves:
    """Deletion and insertion curves of a heatmap and their AUCs.

    Args:
        model: A ``keras.Model`` (or its Explainer).
        image: One image in ``[0, 255]``.
        heatmap: ``(H, W)`` importance map at the input resolution.
        class_index: Class to track (default: the predicted class).
        steps: Number of steps; each removes/inserts ``1/steps`` of the pixels.
        baseline: ``"blur"`` (default), ``"mean"``, ``"black"`` or a constant.

    Returns:
        :class:`FaithfulnessCurves`.
    """
    if steps < 1:
        raise ModelError(f"steps must be >= 1, got {steps}")
    explainer = get_explainer(model)
    x = explainer.prepare(image)[0]
    heat = np.asarray(heatmap, np.float32)
    if heat.shape != x.shape[:2]:
        raise DataError(f"heatmap shape {heat.shape} does not match the image {x.shape[:2]}")
    requested = explainer.check_class(class_index)
    cls = int(np.argmax(explainer.predict(x[None])[0])) if requested < 0 else requested
    base = baseline_image(x, baseline)
    order = np.argsort(-heat.ravel(), kind="stable")
    n = heat.size
    counts = np.round(np.linspace(0, n, steps + 1)).astype(int)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    # (S+1, H*W) masks: True where a pixel is among the first `count` in the order.
    chosen = (rank[None, :] < counts[:, None]).reshape(steps + 1, *heat.shape, 1)
    deleted = np.where(chosen, base[None], x[None])
    inserted = np.where(chosen, x[None], base[None])
    probs = explainer.predict(np.concatenate([deleted, inserted]).astype(np.float32))[:, cls]
    fractions = counts / n
    deletion, insertion = probs[: steps + 1], probs[steps + 1 :]
    return FaithfulnessCurves(
        class_index=cls,
        fractions=fractions.astype(np.float32),
        deletion=deletion,
        insertion=insertion,
        deletion_auc=float(np.trapezoid(deletion, fractions)),
        insertion_auc=float(np.trapezoid(insertion, fractions)),
        baseline=str(baseline),
    )


# --------------------------------------------------------------- agreement
@dataclass(frozen=True, eq=False)
class Agreement:
    """Pairwise rank agreement between heatmap methods on one image.

    Attributes:
        methods: Method names, in matrix order.
        matrix: ``(M, M)`` Spearman correlations (1 on the diagonal).
        heatmaps: ``(M, H, W)`` the compared maps.
        class_index: Explained class.
        layer: Explained layer.
    """

    methods: tuple[str, ...]
    matrix: np.ndarray
    heatmaps: np.ndarray
    class_index: int
    layer: str | None

    @property
    def mean(self) -> float:
        """Mean of the off-diagonal correlations."""
        m = len(self.methods)
        if m < 2:
            return 1.0
        return float(self.matrix[~np.eye(m, dtype=bool)].mean())


def cam_agreement(
    model,
    image: np.ndarray,
    *,
    methods: Sequence[str] = ("gradcam", "gradcam++", "layercam", "scorecam-fast"),
    class_index: int | None = None,
    layer: str | None = None,
) -> Agreement:
    """Spearman correlation between the heatmaps of several methods.

    Args:
        model: A ``keras.Model`` (or its Explainer).
        image: One image in ``[0, 255]``.
        methods: At least two method names (CAM methods share ``layer``).
        class_index: Class to explain (default: predicted).
        layer: CAM layer (default: the default CAM layer).

    Returns:
        An :class:`Agreement`.
    """
    keys = [canonical_method(m) for m in methods]
    if len(keys) < 2:
        raise ModelError(f"agreement needs at least two methods, got {keys}")
    explainer = get_explainer(model)
    first = run_method(explainer, image, method=keys[0], class_index=class_index, layer=layer)
    results = [first]
    for key in keys[1:]:
        results.append(
            run_method(
                explainer,
                image,
                method=key,
                class_index=first.class_index,
                layer=first.layer if METHODS[key].needs_layer else None,
            )
        )
    maps = np.stack([r.heatmap for r in results])
    m = len(keys)
    matrix = np.eye(m, dtype=np.float64)
    for i in range(m):
        for j in range(i + 1, m):
            matrix[i, j] = matrix[j, i] = spearman(maps[i], maps[j])
    return Agreement(tuple(keys), matrix, maps, first.class_index, first.layer)


# ------------------------------------------------------------ localisation
Metric = Literal["euclidean", "chessboard"]

DEFAULT_TOLERANCE = 0.02
"""Pointing-game tolerance as a share of the image side (2 %)."""

MIN_TOLERANCE_PX = 1.5
"""Smallest tolerance in pixels: a peak on a pixel touching the lesion (even diagonally)
counts, however small the image (2 % of 32 px would be 0.6 px, below the pixel grid)."""


def tolerance_pixels(tolerance: float, side: int) -> float:
    """``tolerance`` (share of the side) in pixels, at least :data:`MIN_TOLERANCE_PX`."""
    return max(float(tolerance) * side, MIN_TOLERANCE_PX)


def _check_pair(heatmap: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    heat = np.asarray(heatmap, np.float32)
    m = np.asarray(mask).astype(bool)
    if heat.ndim != 2 or heat.shape != m.shape:
        raise DataError(f"heatmap {heat.shape} and mask {m.shape} must be equal (H, W) arrays")
    return heat, m


def lesion_distance(mask: np.ndarray, *, metric: Metric = "euclidean") -> np.ndarray:
    """Distance in pixels from every pixel to the nearest lesion pixel (0 inside).

    Args:
        mask: ``(H, W)`` bool lesion mask (non-empty).
        metric: ``"euclidean"`` (a mask grown by ``t`` is the mask dilated by
            a disk) or ``"chessboard"`` (a box grown by ``t`` on every side is
            still a box: right for masks rasterised from boxes).

    Returns:
        ``(H, W)`` float64 distances.
    """
    m = np.asarray(mask).astype(bool)
    if metric == "euclidean":
        return ndimage.distance_transform_edt(~m)
    if metric == "chessboard":
        return ndimage.distance_transform_cdt(~m, metric="chessboard").astype(np.float64)
    raise DataError(f"unknown metric {metric!r}; use 'euclidean' or 'chessboard'")


def pointing_game(
    heatmap: np.ndarray,
    mask: np.ndarray,
    *,
    tolerance_px: float = 2,
    metric: Metric = "euclidean",
) -> bool:
    """Whether the heatmap's maximum lies inside the mask grown by ``tolerance_px``.

    Args:
        heatmap: ``(H, W)`` map.
        mask: ``(H, W)`` bool lesion mask.
        tolerance_px: Growth of the mask in pixels (a disk for
            ``"euclidean"``, a square for ``"chessboard"``).
        metric: See :func:`lesion_distance`.

    Returns:
        ``True`` for a hit; a constant heatmap (which points nowhere) or an
        empty mask is a miss.
    """
    heat, m = _check_pair(heatmap, mask)
    if not m.any() or np.ptp(heat) == 0:
        return False
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return bool(lesion_distance(m, metric=metric)[y, x] <= tolerance_px)


def topk_iou(heatmap: np.ndarray, mask: np.ndarray, *, fraction: float | None = 0.05) -> float:
    """IoU between the top ``fraction`` of heatmap pixels and the mask.

    Args:
        heatmap: ``(H, W)`` map.
        mask: ``(H, W)`` bool lesion mask.
        fraction: Share of pixels kept (``None``: as many as the mask has).

    Returns:
        IoU in ``[0, 1]`` (0 for an empty mask).
    """
    heat, m = _check_pair(heatmap, mask)
    k = int(m.sum()) if fraction is None else round(float(fraction) * heat.size)
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise DataError(f"fraction must lie in (0, 1], got {fraction}")
    if k == 0 or not m.any():
        return 0.0
    top = np.zeros(heat.size, bool)
    top[np.argsort(-heat.ravel(), kind="stable")[:k]] = True
    top = top.reshape(heat.shape)
    return float((top & m).sum() / (top | m).sum())


def map_class_names(model_classes: Sequence[str], data_classes: Sequence[str]) -> np.ndarray:
    """Map every data class to the model output of the same (normalised) name.

    Unlike :func:`medviz.metrics.match_classes` the data may hold fewer
    classes than the model (3 tumour types scored by a 4-class model that also
    knows "no tumour"): localisation only needs each data class to exist.

    Args:
        model_classes: The model's class names, in output order.
        data_classes: The dataset's class names, in label order.

    Returns:
        ``(len(data_classes),)`` int64: model index of every data class.

    Raises:
        DataError: A data class the model does not know (the message names
            both lists), or names that repeat after normalisation.
    """
    model_norm = [normalize_class_name(c) for c in model_classes]
    both = f"model classes {list(model_classes)}, data classes {list(data_classes)}"
    if len(set(model_norm)) != len(model_norm):
        raise DataError(f"model class names repeat after normalisation: {both}")
    index = {name: i for i, name in enumerate(model_norm)}
    unknown = [c for c in data_classes if normalize_class_name(c) not in index]
    if unknown:
        raise DataError(f"data classes {unknown} are not classes of the model: {both}")
    return np.array([index[normalize_class_name(c)] for c in data_classes], dtype=np.int64)


def with_model_classes(dataset, model_classes: Sequence[str]):
    """``dataset`` with labels renumbered as model outputs (see :func:`map_class_names`)."""
    from dataclasses import replace

    mapping = map_class_names(model_classes, dataset.class_names)
    return replace(dataset, labels=mapping[dataset.labels], class_names=tuple(model_classes))


def lesion_metric(dataset) -> Metric:
    """``"chessboard"`` for masks rasterised from boxes only, else ``"euclidean"``."""
    extras = getattr(dataset, "extras", None) or {}
    return "chessboard" if extras.get("annotation") == "boxes" else "euclidean"


@dataclass(frozen=True, eq=False)
class LocalizationBaseline:
    """A trivial pointer scored like a heatmap: the image centre, or a random point.

    Attributes:
        name: ``"centre"`` or ``"random"``.
        hit_rate: Pointing-game hit rate (for ``"random"``: the expected rate,
            i.e. the mean share of each image within the tolerance of its lesion).
        hit_rate_ci: Bootstrap 95 % interval (same resamples as the method).
        mean_iou: Mean IoU of the same number of pixels (``"centre"``: the
            pixels nearest the centre; ``"random"``: expected IoU of
            uniformly random pixels, ratio of expectations).
        mean_iou_ci: Bootstrap 95 % interval of the mean IoU.
        hits: ``(n,)`` float per image (0/1 for the centre, a probability for random).
        ious: ``(n,)`` float per image.
    """

    name: str
    hit_rate: float
    hit_rate_ci: tuple[float, float]
    mean_iou: float
    mean_iou_ci: tuple[float, float]
    hits: np.ndarray
    ious: np.ndarray

    def summary(self) -> dict[str, object]:
        """The numbers as a JSON-friendly dict."""
        return {
            "hit_rate": self.hit_rate,
            "hit_rate_ci": list(self.hit_rate_ci),
            "mean_iou": self.mean_iou,
            "mean_iou_ci": list(self.mean_iou_ci),
        }


@dataclass(frozen=True, eq=False)
class LocalizationReport:
    """How well a heatmap method localises lesions over a dataset split.

    Attributes:
        method: Heatmap method.
        layer: Explained layer (``None`` for input-space methods).
        split: Dataset split.
        n: Images scored.
        hit_rate: Pointing-game hit rate.
        hit_rate_ci: Bootstrap 95 % interval of the hit rate.
        mean_iou: Mean top-k IoU.
        mean_iou_ci: Bootstrap 95 % interval of the mean IoU.
        hits: ``(n,)`` bool per image.
        ious: ``(n,)`` float per image.
        indices: ``(n,)`` positions of the scored images in the split.
        tolerance: Pointing-game tolerance as a share of the image side.
        tolerance_px: The same in pixels.
        fraction: Top-k fraction of the IoU (``None``: mask size).
        seconds: Wall time.
        baselines: ``{"centre": …, "random": …}`` :class:`LocalizationBaseline`.
        accuracy: Share of the scored images whose explained class is the
            predicted one (the heatmap explains the true class either way).
        metric: How the lesion was grown (``"chessboard"`` for boxes).
    """

    method: str
    layer: str | None
    split: str
    n: int
    hit_rate: float
    hit_rate_ci: tuple[float, float]
    mean_iou: float
    mean_iou_ci: tuple[float, float]
    hits: np.ndarray
    ious: np.ndarray
    indices: np.ndarray
    tolerance_px: float
    fraction: float | None
    seconds: float
    tolerance: float = DEFAULT_TOLERANCE
    baselines: dict[str, LocalizationBaseline] = field(default_factory=dict)
    accuracy: float = float("nan")
    metric: str = "euclidean"

    @property
    def best_baseline(self) -> float:
        """The higher hit rate of the centre and random baselines (0 without baselines)."""
        return max((b.hit_rate for b in self.baselines.values()), default=0.0)

    @property
    def passed(self) -> bool:
        """Whether the hit rate's 95 % interval lies above the best trivial pointer."""
        return self.hit_rate_ci[0] > self.best_baseline

    def summary(self) -> dict[str, object]:
        """The numbers as a JSON-friendly dict."""
        return {
            "method": self.method,
            "layer": self.layer,
            "split": self.split,
            "n": self.n,
            "hit_rate": self.hit_rate,
            "hit_rate_ci": list(self.hit_rate_ci),
            "mean_iou": self.mean_iou,
            "mean_iou_ci": list(self.mean_iou_ci),
            "tolerance": self.tolerance,
            "tolerance_px": self.tolerance_px,
            "fraction": self.fraction,
            "metric": self.metric,
            "accuracy": self.accuracy,
            "baselines": {name: b.summary() for name, b in self.baselines.items()},
            "better_than_baselines": self.passed,
            "seconds": self.seconds,
        }


def _baselines(
    masks: np.ndarray,
    *,
    tolerance_px: float,
    fraction: float | None,
    metric: Metric,
    n_bootstrap: int,
    seed: int,
) -> dict[str, LocalizationBaseline]:
    """Centre-point and random-point baselines on the same masks and tolerance."""
    n, h, w = masks.shape
    yy, xx = np.mgrid[0:h, 0:w]
    centre_map = -np.hypot(yy + 0.5 - h / 2.0, xx + 0.5 - w / 2.0)  # peak at the centre
    cy, cx = np.unravel_index(int(np.argmax(centre_map)), (h, w))
    centre_hits, random_hits = np.zeros(n), np.zeros(n)
    centre_ious, random_ious = np.zeros(n), np.zeros(n)
    for i, mask in enumerate(masks):
        near = lesion_distance(mask, metric=metric) <= tolerance_px
        centre_hits[i] = float(near[cy, cx])
        random_hits[i] = float(near.mean())
        centre_ious[i] = topk_iou(centre_map, mask, fraction=fraction)
        k = int(mask.sum()) if fraction is None else round(float(fraction) * h * w)
        inter = k * mask.sum() / (h * w)  # expected overlap of k uniformly random pixels
        random_ious[i] = inter / (k + mask.sum() - inter) if k + mask.sum() > 0 else 0.0
    out = {}
    for name, hits, ious in (
        ("centre", centre_hits, centre_ious),
        ("random", random_hits, random_ious),
    ):
        out[name] = LocalizationBaseline(
            name=name,
            hit_rate=float(hits.mean()),
            hit_rate_ci=bootstrap_ci(hits, n_bootstrap=n_bootstrap, seed=seed),
            mean_iou=float(ious.mean()),
            mean_iou_ci=bootstrap_ci(ious, n_bootstrap=n_bootstrap, seed=seed),
            hits=hits,
            ious=ious,
        )
    return out


def localization_score(
    model,
    dataset,
    *,
    method: str = "gradcam",
    layer: str | None = None,
    split: str = "test",
    class_index: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    fraction: float | None = 0.05,
    max_images: int | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    **options,
) -> LocalizationReport:
    """Pointing game and top-k IoU of a method on the images with a lesion, with baselines.

    Every image whose mask is non-empty is scored (images of lesion-free
    classes have empty masks). The same masks, tolerance and bootstrap
    resamples score two trivial pointers, the image centre and a uniformly
    random point (see :class:`LocalizationBaseline`): a method is only useful
    where it beats them.

    Args:
        model: A ``keras.Model`` (or its Explainer) for the dataset's images.
        dataset: A :class:`medviz.data.dataset.Dataset` with ``masks`` whose
            labels are model outputs (see :func:`with_model_classes`).
        method: Heatmap method.
        layer: CAM layer (default: the default CAM layer).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        class_index: Class to explain (default: each image's own label).
        tolerance: Pointing-game tolerance as a share of the image side
            (0.02: the lesion grown by 2 % of the side, at least
            :data:`MIN_TOLERANCE_PX`; a box stays a box).
        fraction: Top-k share of pixels for the IoU (``None``: mask size).
        max_images: Score at most this many images: a seeded random sample.
        n_bootstrap: Bootstrap resamples for the 95 % intervals.
        seed: Seed of the sample and the bootstrap.
        on_progress: Called with ``(done, total)`` images after each chunk.
        **options: Method options.

    Returns:
        A :class:`LocalizationReport`.

    Raises:
        DataError: The dataset has no masks, no lesion image in the split, or
            a tolerance outside ``[0, 0.5]``.
    """
    started = time.perf_counter()
    if getattr(dataset, "masks", None) is None:
        raise DataError(
            f"dataset {getattr(dataset, 'name', '?')!r} has no lesion masks; localisation "
            "needs ground-truth masks or boxes (the embedded synthetic-microcalc data and "
            "brain-tumor-boxes have them)"
        )
    if not 0.0 <= float(tolerance) <= 0.5:
        raise DataError(
            f"tolerance is a share of the image side in [0, 0.5] (0.02 = 2 %), got {tolerance}"
        )
    part = dataset.split(split)
    indices = np.flatnonzero(part.masks.reshape(len(part), -1).any(axis=1))
    if max_images is not None and len(indices) > max(0, int(max_images)):
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=max(0, int(max_images)), replace=False))
    if len(indices) == 0:
        raise DataError(f"split {split!r} of {part.name!r} has no images with a lesion mask")
    explainer = get_explainer(model)
    key = canonical_method(method)
    classes = (
        part.labels[indices]
        if class_index is None
        else np.full(len(indices), explainer.check_class(class_index))
    )
    chunk = 32
    maps, probs = [], []
    for start in range(0, len(indices), chunk):
        heat, _, p = explainer.heatmaps(
            part.images[indices[start : start + chunk]],
            method=key,
            class_indices=classes[start : start + chunk],
            layer=layer,
            **options,
        )
        maps.append(heat)
        probs.append(p)
        if on_progress is not None:
            on_progress(min(start + chunk, len(indices)), len(indices))
    heatmaps, probabilities = np.concatenate(maps), np.concatenate(probs)
    masks = part.masks[indices]
    tolerance_px = tolerance_pixels(tolerance, max(masks.shape[1:]))
    metric = lesion_metric(dataset)
    hits = np.array(
        [
            pointing_game(h, m, tolerance_px=tolerance_px, metric=metric)
            for h, m in zip(heatmaps, masks, strict=True)
        ]
    )
    ious = np.array(
        [topk_iou(h, m, fraction=fraction) for h, m in zip(heatmaps, masks, strict=True)],
        np.float64,
    )
    used_layer = resolve_cam_layer(explainer.model, layer) if METHODS[key].needs_layer else None
    return LocalizationReport(
        method=key,
        layer=used_layer,
        split=split,
        n=len(indices),
        hit_rate=float(hits.mean()),
        hit_rate_ci=bootstrap_ci(hits.astype(float), n_bootstrap=n_bootstrap, seed=seed),
        mean_iou=float(ious.mean()),
        mean_iou_ci=bootstrap_ci(ious, n_bootstrap=n_bootstrap, seed=seed),
        hits=hits,
        ious=ious,
        indices=indices,
        tolerance=float(tolerance),
        tolerance_px=tolerance_px,
        fraction=fraction,
        seconds=time.perf_counter() - started,
        baselines=_baselines(
            masks,
            tolerance_px=tolerance_px,
            fraction=fraction,
            metric=metric,
            n_bootstrap=n_bootstrap,
            seed=seed,
        ),
        accuracy=float(np.mean(np.argmax(probabilities, axis=1) == classes)),
        metric=metric,
    )
