"""Checks of one heatmap that can fail on real images, and their verdict.

The older checks in :mod:`medviz.explain.trust` cannot catch a model that
looks at the wrong place: three CAM variants of one layer agree by
construction, and a map that follows the background still changes when the
weights are randomised. These can:

* a blank (constant) map shows nothing and fails.
* :func:`foreground_mass`: the share of the map's mass on the body. The body is
  found by a simple intensity rule (pixels brighter than the smaller of Otsu's
  threshold and :data:`DARK_LEVEL`; parts smaller than a fifth of the largest
  dropped, so burned-in markers are not body; holes filled, so dark ventricles
  or lungs enclosed by tissue stay body); only images with a real dark background (at
  least :data:`MIN_BACKGROUND` of the image) are judged. A map with most of
  its mass on the background fails.
* :func:`family_agreement`: agreement (correlation of cell means) between maps of *different method
  families* (a CAM, occlusion, integrated gradients), compared on a coarse
  grid so that each family's resolution does not count. Families that point
  at different places fail.
* localisation: the pointing game against a lesion mask or box of the image,
  or a :class:`~medviz.explain.trust.LocalizationReport` over a dataset that
  must beat the centre-point and random-point baselines.

:func:`trust_summary` collects them into a :class:`TrustSummary` whose line
says "Do not trust this map" when any check fails. Everything here is NumPy
on given maps, so a page can check maps it already has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from medviz.errors import DataError, ModelError
from medviz.explain.engine import get_explainer
from medviz.explain.methods import METHODS, canonical_method, run_method
from medviz.explain.trust import (
    DEFAULT_TOLERANCE,
    LocalizationReport,
    Metric,
    lesion_distance,
    tolerance_pixels,
)

DARK_LEVEL = 40
"""Highest grey level (of 255) that can be background: air around a head or chest is near 0."""

MIN_BACKGROUND = 0.05
"""Share of the image the background must cover before the mass check judges a map."""

MIN_FOREGROUND_MASS = 0.5
"""The mass check fails below this share of the map on the body ("most mass on background")."""

MIN_AGREEMENT = 0.3
"""The agreement check fails below this mean correlation (cell means) across families."""

AGREEMENT_GRID = 8
"""Maps are compared on an ``8 × 8`` grid of cell means."""

FAMILIES: dict[str, str] = {
    "gradcam": "CAM",
    "gradcam++": "CAM",
    "layercam": "CAM",
    "scorecam": "CAM",
    "scorecam-fast": "CAM",
    "saliency": "gradient",
    "smoothgrad": "gradient",
    "integrated-gradients": "gradient",
    "occlusion": "perturbation",
}
"""Method → family. Maps of one family share their machinery and agree by construction."""

REFERENCES: dict[str, str] = {
    "CAM": "gradcam",
    "gradient": "integrated-gradients",
    "perturbation": "occlusion",
}
"""The method that stands for each family in the agreement check."""

Status = Literal["pass", "fail", "n/a"]


# ------------------------------------------------------------ foreground
def otsu_threshold(gray: np.ndarray) -> float:
    """Otsu's threshold of a grey image with values in ``[0, 255]``.

    Returns:
        The level that maximises the between-class variance of the 256-bin
        histogram (pixels ``> level`` are the bright class).
    """
    values = np.clip(np.asarray(gray, np.float64), 0, 255).astype(np.uint8).ravel()
    p = np.bincount(values, minlength=256).astype(np.float64)
    p /= max(p.sum(), 1.0)
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * w - mu) ** 2 / np.maximum(w * (1.0 - w), 1e-12)
    return float(np.argmax(between))


def foreground_mask(
    image: np.ndarray, *, dark_level: float = DARK_LEVEL, min_background: float = MIN_BACKGROUND
) -> np.ndarray | None:
    """The body: bright pixels with the holes filled, or ``None`` without a real background.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` pixels in ``[0, 255]``.
        dark_level: Background pixels are at most this bright (the threshold is
            the smaller of Otsu's and this), so textured tissue filling the
            whole frame never becomes "background".
        min_background: Below this share of background pixels the image has
            none worth judging.

    Returns:
        ``(H, W)`` bool body mask, or ``None`` when the background covers less
        than ``min_background`` of the image (e.g. a tissue patch).
    """
    arr = np.asarray(image, np.float64)
    if arr.ndim == 3:
        arr = arr.mean(axis=-1)
    if arr.ndim != 2:
        raise DataError(f"image must be (H, W) or (H, W, C), got shape {np.shape(image)}")
    gray = ndimage.gaussian_filter(arr, sigma=1.0)  # speckle noise must not split the body
    level = min(otsu_threshold(gray), float(dark_level))
    labels, count = ndimage.label(gray > level)
    if count > 1:
        # Burned-in letters, markers and specks in the air are not body: keep the large
        # parts (both lungs, both legs), those at least a fifth of the largest.
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.flatnonzero(sizes >= 0.2 * sizes.max()) + 1
        body = ndimage.binary_fill_holes(np.isin(labels, keep))
    else:
        body = ndimage.binary_fill_holes(labels > 0)
    if (~body).mean() < min_background:
        return None
    return body


@dataclass(frozen=True)
class ForegroundMass:
    """Where a heatmap's mass lies: on the body or on the background.

    Attributes:
        share: Share of the map's mass on the body (``nan`` when not judged).
        body_fraction: Share of the image that is body (what a flat map gets).
        judged: Whether the image has a background to judge against.
    """

    share: float
    body_fraction: float
    judged: bool

    @property
    def passed(self) -> bool:
        """Not judged, or at least half of the mass on the body."""
        return not self.judged or self.share >= MIN_FOREGROUND_MASS


def foreground_mass(
    image: np.ndarray, heatmap: np.ndarray, *, body: np.ndarray | None = None
) -> ForegroundMass:
    """Share of a heatmap's mass on the body (see :func:`foreground_mask`).

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` pixels in ``[0, 255]``.
        heatmap: ``(H, W)`` non-negative map (e.g. in ``[0, 1]``).
        body: A precomputed body mask (default: :func:`foreground_mask`).

    Returns:
        A :class:`ForegroundMass`; a map without mass or an image without
        background is not judged.
    """
    heat = np.clip(np.asarray(heatmap, np.float64), 0.0, None)
    mask = foreground_mask(image) if body is None else np.asarray(body, bool)
    if mask is not None and mask.shape != heat.shape:
        raise DataError(f"heatmap {heat.shape} and image {mask.shape} differ in size")
    total = heat.sum()
    if mask is None or total <= 0:
        fraction = 1.0 if mask is None else float(mask.mean())
        return ForegroundMass(share=float("nan"), body_fraction=fraction, judged=False)
    return ForegroundMass(
        share=float(heat[mask].sum() / total), body_fraction=float(mask.mean()), judged=True
    )


# ------------------------------------------------------------ agreement
def family_of(method: str) -> str:
    """The family of a method name (``"CAM"``, ``"gradient"`` or ``"perturbation"``)."""
    return FAMILIES[canonical_method(method)]


def coarse(heatmap: np.ndarray, grid: int = AGREEMENT_GRID) -> np.ndarray:
    """``(grid, grid)`` cell means of an ``(H, W)`` map (cells as even as the size allows)."""
    heat = np.asarray(heatmap, np.float64)
    if heat.ndim != 2 or min(heat.shape) < grid:
        raise DataError(f"heatmap must be (H, W) with H, W >= {grid}, got {heat.shape}")
    rows = np.array_split(np.arange(heat.shape[0]), grid)
    cols = np.array_split(np.arange(heat.shape[1]), grid)
    return np.array([[heat[np.ix_(r, c)].mean() for c in cols] for r in rows])


def coarse_agreement(a: np.ndarray, b: np.ndarray, *, grid: int = AGREEMENT_GRID) -> float:
    """Pearson correlation of two maps on a ``grid × grid`` grid of cell means (0 if constant).

    Pearson, not rank: a map of a small lesion is one peak on a near-zero
    background, and a rank correlation is decided by the arbitrary order of
    those background cells. On 20 positive synthetic test patches whose
    Grad-CAM peak sits on the specks (pointing game 0.92), rank correlation
    with integrated gradients and occlusion averaged 0.19 (80 % of pairs under
    0.3, i.e. "do not trust"), Pearson 0.61 (15 % under 0.3).
    """
    x = coarse(a, grid).ravel()
    y = coarse(b, grid).ravel()
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


@dataclass(frozen=True, eq=False)
class FamilyAgreement:
    """Agreement between heatmaps of different method families on one image.

    Attributes:
        methods: Method names, one per family, in matrix order.
        matrix: ``(M, M)`` coarse-grid Pearson correlations (1 on the diagonal).
        heatmaps: ``(M, H, W)`` the compared maps.
        class_index: Explained class.
        grid: Side of the comparison grid.
    """

    methods: tuple[str, ...]
    matrix: np.ndarray
    heatmaps: np.ndarray
    class_index: int
    grid: int

    @property
    def mean(self) -> float:
        """Mean of the off-diagonal correlations."""
        m = len(self.methods)
        return float(self.matrix[~np.eye(m, dtype=bool)].mean()) if m > 1 else 1.0

    @property
    def passed(self) -> bool:
        """Whether the families agree (mean correlation at least :data:`MIN_AGREEMENT`)."""
        return self.mean >= MIN_AGREEMENT


def family_agreement(
    model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    layer: str | None = None,
    methods: tuple[str, ...] = ("gradcam", "occlusion", "integrated-gradients"),
    heatmaps: Mapping[str, np.ndarray] | None = None,
    grid: int = AGREEMENT_GRID,
) -> FamilyAgreement:
    """Agreement between a CAM, occlusion and integrated gradients on one image.

    Args:
        model: A ``keras.Model`` (or its Explainer).
        image: One image in ``[0, 255]``.
        class_index: Class to explain (default: predicted; all maps explain
            the same class).
        layer: CAM layer (default: the default CAM layer).
        methods: One method per family; at least two distinct families.
        heatmaps: Maps already computed for this image and class, by method
            (these are not recomputed).
        grid: Side of the comparison grid.

    Returns:
        A :class:`FamilyAgreement`.

    Raises:
        ModelError: Fewer than two methods or two of one family.
    """
    keys = tuple(canonical_method(m) for m in methods)
    families = [FAMILIES[k] for k in keys]
    if len(keys) < 2 or len(set(families)) != len(families):
        raise ModelError(
            f"agreement needs methods of at least two different families, one each; got "
            f"{dict(zip(keys, families, strict=True))}"
        )
    explainer = get_explainer(model)
    given = dict(heatmaps or {})
    cls = None if class_index is None else explainer.check_class(class_index)
    if cls is None or cls < 0:
        cls = int(np.argmax(explainer.predict(explainer.prepare(image))[0]))
    maps = []
    for key in keys:
        if key in given:
            maps.append(np.asarray(given[key], np.float32))
            continue
        result = run_method(
            explainer,
            image,
            method=key,
            class_index=cls,
            layer=layer if METHODS[key].needs_layer else None,
        )
        maps.append(result.heatmap)
    stack = np.stack(maps)
    m = len(keys)
    matrix = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            matrix[i, j] = matrix[j, i] = coarse_agreement(stack[i], stack[j], grid=grid)
    return FamilyAgreement(keys, matrix, stack, int(cls), grid)


# ------------------------------------------------------------ summary
@dataclass(frozen=True)
class Check:
    """One check of one heatmap.

    Attributes:
        name: What was checked, for people.
        status: ``"pass"``, ``"fail"`` or ``"n/a"`` (not applicable here).
        value: The measured number (``None`` when not applicable).
        threshold: The number it is compared with.
        detail: One sentence with the numbers.
    """

    name: str
    status: Status
    value: float | None
    threshold: float | None
    detail: str


@dataclass(frozen=True)
class TrustSummary:
    """All checks of one heatmap and the verdict.

    Attributes:
        method: The heatmap's method.
        checks: The checks, in a fixed order (mass, agreement, localisation).
    """

    method: str
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if c.status == "fail")

    @property
    def verdict(self) -> Literal["do not trust", "no check failed", "not checked"]:
        """``"do not trust"`` when a check failed, ``"not checked"`` when none applied."""
        if self.failed:
            return "do not trust"
        if any(c.status == "pass" for c in self.checks):
            return "no check failed"
        return "not checked"

    @property
    def trusted(self) -> bool:
        """Whether no check failed (and at least one applied)."""
        return self.verdict == "no check failed"

    def line(self) -> str:
        """The one-line verdict shown next to the map."""
        if self.failed:
            return "Do not trust this map: " + "; ".join(c.detail for c in self.failed)
        applied = [c for c in self.checks if c.status == "pass"]
        if applied:
            names = ", ".join(c.name for c in applied)
            return f"No check failed ({names}); that is not proof the map is right."
        return "Not checked: no check applies to this image (no background, no lesion mask)."

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "method": self.method,
            "verdict": self.verdict,
            "line": self.line(),
            "checks": [
                {
                    "name": c.name,
                    "status": c.status,
                    "value": c.value,
                    "threshold": c.threshold,
                    "detail": c.detail,
                }
                for c in self.checks
            ],
        }


def _mass_check(image: np.ndarray, heatmap: np.ndarray) -> Check:
    mass = foreground_mass(image, heatmap)
    name = "mass on the body"
    if not mass.judged:
        return Check(name, "n/a", None, MIN_FOREGROUND_MASS, "no dark background to judge")
    status: Status = "pass" if mass.passed else "fail"
    where = "on the body" if mass.passed else "on the background"
    share = mass.share if mass.passed else 1.0 - mass.share
    return Check(
        name,
        status,
        mass.share,
        MIN_FOREGROUND_MASS,
        f"{share:.0%} of its mass lies {where} (the body is {mass.body_fraction:.0%} of the image)",
    )


def _agreement_check(method: str, heatmap: np.ndarray, references: Mapping[str, np.ndarray]):
    name = "agreement across method families"
    own = family_of(method)
    others = {m: h for m, h in references.items() if family_of(m) != own}
    if not others:
        return Check(name, "n/a", None, MIN_AGREEMENT, "no map of another family to compare")
    scores = {m: coarse_agreement(heatmap, h) for m, h in others.items()}
    mean = float(np.mean(list(scores.values())))
    status: Status = "pass" if mean >= MIN_AGREEMENT else "fail"
    listed = ", ".join(f"{m} {v:+.2f}" for m, v in scores.items())
    verb = "agrees with" if status == "pass" else "disagrees with"
    return Check(
        name,
        status,
        mean,
        MIN_AGREEMENT,
        f"it {verb} other method families (correlation {listed}; needs {MIN_AGREEMENT:.1f})",
    )


def _lesion_check(
    heatmap: np.ndarray, mask: np.ndarray, *, tolerance: float, metric: Metric
) -> Check:
    name = "points at the lesion"
    m = np.asarray(mask, bool)
    if m.shape != np.shape(heatmap):
        raise DataError(f"mask {m.shape} and heatmap {np.shape(heatmap)} differ in size")
    if not m.any():
        return Check(name, "n/a", None, None, "no lesion marked in this image")
    heat = np.asarray(heatmap)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    distance = float(lesion_distance(m, metric=metric)[y, x])
    limit = tolerance_pixels(tolerance, max(heat.shape))
    status: Status = "pass" if distance <= limit and np.ptp(heat) > 0 else "fail"
    detail = (
        "its peak lies on the marked lesion"
        if distance == 0
        else f"its peak lies {distance:.0f} px from the marked lesion (allowed {limit:.1f} px)"
    )
    return Check(name, status, distance, limit, detail)


def _report_check(method: str, report: LocalizationReport) -> Check:
    name = "localisation over the dataset"
    best = max(report.baselines.items(), key=lambda kv: kv[1].hit_rate, default=None)
    if best is None:
        return Check(name, "n/a", None, None, "no baseline to compare with")
    lo, hi = report.hit_rate_ci
    status: Status = "pass" if report.passed else "fail"
    verb = "beats" if report.passed else "does not beat"
    return Check(
        name,
        status,
        report.hit_rate,
        best[1].hit_rate,
        f"over {report.n} images with lesions its peak hits the lesion in "
        f"{report.hit_rate:.0%} (95 % CI {lo:.0%}–{hi:.0%}), which {verb} pointing at the "
        f"{best[0]} ({best[1].hit_rate:.0%})",
    )


def trust_summary(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    method: str,
    references: Mapping[str, np.ndarray] | None = None,
    mask: np.ndarray | None = None,
    metric: Metric = "euclidean",
    tolerance: float = DEFAULT_TOLERANCE,
    localization: LocalizationReport | None = None,
) -> TrustSummary:
    """Run every check that applies to one heatmap.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` the explained image in ``[0, 255]``
            (model input size).
        heatmap: ``(H, W)`` its map in ``[0, 1]``.
        method: The map's method.
        references: Maps of the same image and class by other methods (e.g.
            ``{"occlusion": …, "integrated-gradients": …}``); those of other
            families are compared with ``heatmap``.
        mask: ``(H, W)`` bool lesion mask (or rasterised boxes) of this image.
        metric: ``"chessboard"`` when ``mask`` comes from boxes.
        tolerance: Pointing tolerance as a share of the image side.
        localization: A dataset-level report of the same method (and model);
            it must beat the centre and random baselines.

    Returns:
        A :class:`TrustSummary`.
    """
    key = canonical_method(method)
    heat = np.asarray(heatmap, np.float32)
    if heat.size == 0 or np.ptp(heat) == 0:
        # Grad-CAM is blank when every weighted channel is negative (ReLU): nothing to judge.
        blank = Check("map shows something", "fail", 0.0, None, "the map is blank (constant)")
        return TrustSummary(method=key, checks=(blank,))
    checks = [_mass_check(image, heat), _agreement_check(key, heat, references or {})]
    if mask is not None:
        checks.append(_lesion_check(heat, mask, tolerance=tolerance, metric=metric))
    if localization is not None and localization.method == key:
        checks.append(_report_check(key, localization))
    return TrustSummary(method=key, checks=tuple(checks))


def check_heatmap(
    model,
    image: np.ndarray,
    *,
    method: str = "gradcam",
    class_index: int | None = None,
    layer: str | None = None,
    mask: np.ndarray | None = None,
    metric: Metric = "euclidean",
    localization: LocalizationReport | None = None,
) -> tuple[np.ndarray, TrustSummary]:
    """Compute a heatmap and the family references, then :func:`trust_summary`.

    Args:
        model: A ``keras.Model`` (or its Explainer).
        image: One image in ``[0, 255]`` at the model's input size.
        method: Heatmap method.
        class_index: Class to explain (default: predicted).
        layer: CAM layer (default: the default CAM layer).
        mask: Optional ``(H, W)`` lesion mask of the image.
        metric: ``"chessboard"`` when ``mask`` comes from boxes.
        localization: Optional dataset-level report of the same method.

    Returns:
        ``(heatmap (H, W), summary)``.
    """
    key = canonical_method(method)
    # The map itself plus the reference method of every other family.
    agreement = family_agreement(
        model,
        image,
        class_index=class_index,
        layer=layer,
        methods=(key, *(m for m in REFERENCES.values() if FAMILIES[m] != FAMILIES[key])),
    )
    maps = dict(zip(agreement.methods, agreement.heatmaps, strict=True))
    x = np.asarray(image)
    summary = trust_summary(
        x[..., 0] if x.ndim == 3 and x.shape[-1] == 1 else x,
        maps[key],
        method=key,
        references={m: h for m, h in maps.items() if m != key},
        mask=mask,
        metric=metric,
        localization=localization,
    )
    return maps[key], summary
