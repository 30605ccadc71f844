"""Embedded default dataset: synthetic mammogram patches with microcalcifications.

Normal tissue is modelled as power-law ("1/f^beta") noise with beta≈3, the
spectrum measured for mammographic background (Burgess et al., Med Phys
2001), on top of a slowly varying density. Positive patches add a cluster of
3-8 small bright specks of varying size and contrast. Both classes may carry
isolated single specks (benign, scattered calcifications), so the network has
to detect a *cluster*, not merely a bright dot. The ground-truth mask of each
cluster comes with the images, which lets MedViz score how well a heatmap
localises the lesion.

Generation is vectorised: 2,400 patches of 64×64 take well under a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from medviz.data.dataset import Dataset, Provenance, assign_splits
from medviz.errors import DataError

CLASS_NAMES = ("normal", "microcalcification")


@dataclass(frozen=True)
class MicrocalcDifficulty:
    """How hard the synthetic task is.

    Attributes:
        contrast: Peak speck brightness in units of the texture's standard
            deviation (lower is harder).
        specks: Inclusive range of specks in a cluster.
        cluster_radius: Inclusive range of the cluster radius in pixels at 64 px.
        distractors: Mean number of isolated specks per image (both classes).
    """

    contrast: float = 2.4
    specks: tuple[int, int] = (3, 8)
    cluster_radius: tuple[float, float] = (3.0, 7.0)
    distractors: float = 0.6

    def __post_init__(self) -> None:
        if self.contrast <= 0:
            raise DataError(f"contrast must be > 0, got {self.contrast}")
        lo, hi = self.specks
        if not 1 <= lo <= hi:
            raise DataError(f"specks must be a range 1 <= lo <= hi, got {self.specks}")


PRESETS: dict[str, MicrocalcDifficulty] = {
    "easy": MicrocalcDifficulty(contrast=3.0, distractors=0.3),
    "default": MicrocalcDifficulty(),
    "hard": MicrocalcDifficulty(contrast=1.6, specks=(3, 6), distractors=0.8),
}


def power_law_noise(
    n: int, size: int, *, beta: float = 3.0, rng: np.random.Generator
) -> np.ndarray:
    """Isotropic power-law noise, each image normalised to zero mean, unit std.

    Args:
        n: Number of images.
        size: Side length in pixels.
        beta: Spectral exponent; power falls as ``1 / f**beta``.
        rng: Random generator.

    Returns:
        ``(n, size, size)`` float32 array.
    """
    # The field is real, so only half its spectrum is needed: rfft2/irfft2 give the same
    # field (to float32 rounding) 20x faster than the complex fft2/ifft2 pair.
    radius = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    radius[0, 0] = 1.0 / size  # keep the DC term finite; it is removed below anyway
    amplitude = (radius ** (-beta / 2.0)).astype(np.float32)
    white = rng.standard_normal((n, size, size)).astype(np.float32)
    field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(size, size)).astype(np.float32)
    field -= field.mean(axis=(1, 2), keepdims=True)
    field /= field.std(axis=(1, 2), keepdims=True) + 1e-8
    return field


def _render_specks(
    canvas: np.ndarray,
    mask: np.ndarray | None,
    centres: np.ndarray,
    sigmas: np.ndarray,
    amplitudes: np.ndarray,
) -> None:
    """Add Gaussian specks to ``canvas`` (H, W) in place; mark them in ``mask``."""
    size = canvas.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for (cy, cx), sigma, amp in zip(centres, sigmas, amplitudes, strict=True):
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        canvas += amp * np.exp(-d2 / (2.0 * sigma**2))
        if mask is not None:
            # A speck's visible extent is about 2 sigma; one pixel more keeps
            # sub-pixel specks from vanishing from the mask.
            mask |= d2 <= (2.0 * sigma + 1.0) ** 2


def generate_microcalc(
    n: int = 2400,
    *,
    image_size: int = 64,
    channels: int = 1,
    positive_fraction: float = 0.5,
    difficulty: MicrocalcDifficulty | str = "default",
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> Dataset:
    """Generate mammogram-like patches, normal vs microcalcification cluster.

    Args:
        n: Number of images.
        image_size: Side length in pixels (specks scale with it).
        channels: 1, or 3 for a copy in each RGB channel.
        positive_fraction: Share of images with a cluster, in (0, 1).
        difficulty: A :class:`MicrocalcDifficulty` or a preset name
            (``"easy"``, ``"default"``, ``"hard"``).
        seed: Same seed, same images, labels, masks and splits.
        fractions: Train/val/test fractions.

    Returns:
        A :class:`Dataset` with ``(n, S, S, C)`` images and ``(n, S, S)``
        masks (all ``False`` for normal tissue).
    """
    if n < 2:
        raise DataError(f"n must be at least 2, got {n}")
    if not 0.0 < positive_fraction < 1.0:
        raise DataError(f"positive_fraction must lie in (0, 1), got {positive_fraction}")
    if image_size < 16:
        raise DataError(f"image_size must be at least 16, got {image_size}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if isinstance(difficulty, str):
        if difficulty not in PRESETS:
            raise DataError(f"unknown difficulty {difficulty!r}; choose one of {sorted(PRESETS)}")
        difficulty = PRESETS[difficulty]

    rng = np.random.default_rng(seed)
    size = image_size
    scale = size / 64.0
    n_pos = round(n * positive_fraction)
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.permutation(n)[:n_pos]] = 1

    # Tissue: fine power-law texture plus a smooth density trend (fatty vs dense).
    texture = power_law_noise(n, size, beta=3.0, rng=rng)
    trend = power_law_noise(n, size, beta=4.5, rng=rng)
    density = rng.uniform(0.35, 0.6, size=(n, 1, 1)).astype(np.float32)
    texture_std = rng.uniform(0.06, 0.09, size=(n, 1, 1)).astype(np.float32)
    images = density + texture_std * texture + 0.04 * trend
    masks = np.zeros((n, size, size), dtype=bool)

    margin = 10.0 * scale
    for i in range(n):
        std = float(texture_std[i, 0, 0])
        # Isolated distractor specks, in both classes.
        k = rng.poisson(difficulty.distractors)
        if k:
            _render_specks(
                images[i],
                None,
                rng.uniform(3 * scale, size - 3 * scale, size=(k, 2)),
                rng.uniform(0.6, 1.2, size=k) * scale,
                rng.uniform(0.8, 1.3, size=k) * difficulty.contrast * std,
            )
        if labels[i] == 1:
            count = rng.integers(difficulty.specks[0], difficulty.specks[1] + 1)
            radius = rng.uniform(*difficulty.cluster_radius) * scale
            centre = rng.uniform(margin, size - margin, size=2)
            angle = rng.uniform(0, 2 * np.pi, size=count)
            dist = radius * np.sqrt(rng.uniform(0.05, 1.0, size=count))
            points = centre + np.stack([np.sin(angle), np.cos(angle)], axis=1) * dist[:, None]
            _render_specks(
                images[i],
                masks[i],
                points,
                rng.uniform(0.5, 1.1, size=count) * scale,
                rng.uniform(0.7, 1.3, size=count) * difficulty.contrast * std,
            )

    pixels = np.clip(images * 255.0, 0, 255).round().astype(np.uint8)[..., None]
    if channels == 3:
        pixels = np.repeat(pixels, 3, axis=-1)
    digests = tuple(hashlib.sha1(p.tobytes()).hexdigest() for p in pixels)
    provenance = Provenance(
        sources=tuple(f"synthetic-{seed}-{i:05d}" for i in range(n)),
        original_sizes=np.full((n, 2), size, dtype=np.int64),
        original_modes=("L" if channels == 1 else "RGB",) * n,
        digests=digests,
    )
    return Dataset(
        name="synthetic-microcalc",
        images=pixels,
        labels=labels,
        class_names=CLASS_NAMES,
        splits=assign_splits(labels, fractions=fractions, seed=seed),
        masks=masks,
        provenance=provenance,
        licence="CC0-1.0 (generated by MedViz)",
        description="Synthetic mammogram patches: power-law tissue, clusters of 3-8 specks",
    )
