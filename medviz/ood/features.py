"""What the out-of-distribution detector looks at: input statistics and layer features.

Two kinds of measurement, both computed on the ``0–255`` model input:

* **Input statistics** (:func:`input_statistics`): intensity moments and
  percentiles, black background, edge density, texture, symmetry. They are
  model-independent and separate imaging modalities well (a CT slice has a
  round body on black; a chest film is bright and left-right symmetric; noise
  has huge Laplacian energy).
* **Layer features** (:func:`layer_features`): global-average-pooled outputs of
  the last conv stages and the penultimate vector (the input of the
  classification layer). Layers are chosen by shape, never by name
  (:func:`feature_layers`), so a retrained net of another architecture works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medviz.errors import ModelError

PENULTIMATE = "<penultimate>"  # stored instead of a name: the input of the last layer
OUTPUT = "<output>"  # the model's output (class scores), for fitting

STAT_NAMES: tuple[str, ...] = (
    "mean",
    "std",
    "skew",
    "kurtosis",
    "p05",
    "p50",
    "p95",
    "dark_fraction",
    "bright_fraction",
    "entropy",
    "gradient_mean",
    "edge_density",
    "laplacian_mean",
    "flat_fraction",
    "grey_levels",
    "anisotropy",
    "lag1_correlation",
    "lr_symmetry",
    "ud_symmetry",
    "border_minus_centre",
    "corner_mean",
    *(f"layout_{r}{c}" for r in range(4) for c in range(4)),
)


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of ``(N, P)`` arrays (0 where either is constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    return np.where(den > 1e-9, (a * b).sum(axis=1) / np.maximum(den, 1e-9), 0.0)


def input_statistics(images: np.ndarray) -> np.ndarray:
    """Model-independent statistics of model inputs.

    Args:
        images: ``(N, S, S, C)`` model inputs, raw values in ``[0, 255]``
            (colour is averaged to grey).

    Returns:
        ``(N, len(STAT_NAMES))`` float64, columns in :data:`STAT_NAMES` order.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ModelError(f"expected images (N, S, S, C), got shape {x.shape}")
    g = x.mean(axis=3) / 255.0  # (N, S, S)
    n, s, _ = g.shape
    flat = g.reshape(n, -1)
    mean = flat.mean(axis=1)
    std = flat.std(axis=1)
    safe = np.maximum(std, 1e-6)
    centred = (flat - mean[:, None]) / safe[:, None]
    skew = np.where(std > 1e-6, (centred**3).mean(axis=1), 0.0)
    kurt = np.where(std > 1e-6, (centred**4).mean(axis=1) - 3.0, 0.0)
    p05, p50, p95 = np.percentile(flat, [5, 50, 95], axis=1)
    levels = np.clip((flat * 31.999).astype(np.int64), 0, 31)
    hist = np.stack([np.bincount(row, minlength=32) for row in levels]) / flat.shape[1]
    entropy = -(hist * np.log2(np.where(hist > 0, hist, 1.0))).sum(axis=1) / 5.0
    grey_levels = np.array([np.unique(np.round(row * 255)).size for row in flat]) / 256.0
    dx = np.diff(g, axis=2)[:, :-1, :]
    dy = np.diff(g, axis=1)[:, :, :-1]
    magnitude = np.sqrt(dx**2 + dy**2).reshape(n, -1)
    lap = (
        -4 * g[:, 1:-1, 1:-1] + g[:, :-2, 1:-1] + g[:, 2:, 1:-1] + g[:, 1:-1, :-2] + g[:, 1:-1, 2:]
    )
    energy_x = (dx**2).mean(axis=(1, 2))
    energy_y = (dy**2).mean(axis=(1, 2))
    anisotropy = np.log((energy_x + 1e-6) / (energy_y + 1e-6))
    lag1 = _correlation(g[:, :, :-1].reshape(n, -1), g[:, :, 1:].reshape(n, -1))
    lr = _correlation(flat, g[:, :, ::-1].reshape(n, -1))
    ud = _correlation(flat, g[:, ::-1, :].reshape(n, -1))
    b = max(1, s // 8)
    border = np.ones((s, s), bool)
    border[b:-b, b:-b] = False
    centre = np.zeros((s, s), bool)
    centre[s // 4 : s - s // 4, s // 4 : s - s // 4] = True
    corners = np.concatenate(
        [
            g[:, :b, :b].reshape(n, -1),
            g[:, :b, -b:].reshape(n, -1),
            g[:, -b:, :b].reshape(n, -1),
            g[:, -b:, -b:].reshape(n, -1),
        ],
        axis=1,
    )
    columns = (
        mean,
        std,
        np.clip(skew, -10, 10),
        np.sign(kurt) * np.log1p(np.abs(kurt)),
        p05,
        p50,
        p95,
        (flat <= 10 / 255).mean(axis=1),
        (flat >= 245 / 255).mean(axis=1),
        entropy,
        magnitude.mean(axis=1),
        (magnitude > 32 / 255).mean(axis=1),
        np.abs(lap).reshape(n, -1).mean(axis=1),
        (magnitude < 0.5 / 255).mean(axis=1),
        grey_levels,
        anisotropy,
        lag1,
        lr,
        ud,
        g[:, border].mean(axis=1) - g[:, centre].mean(axis=1),
        corners.mean(axis=1),
    )
    # Where bright and dark sit (lungs either side of a chest film, a round head in an MRI):
    # 4×4 block means of the standardised image.
    edges = np.linspace(0, s, 5).astype(int)
    z = (g - mean[:, None, None]) / safe[:, None, None]
    layout = [
        z[:, edges[r] : edges[r + 1], edges[c] : edges[c + 1]].mean(axis=(1, 2))
        for r in range(4)
        for c in range(4)
    ]
    return np.stack([*columns, *layout], axis=1)


def penultimate_layer(model) -> str | None:
    """Name of the layer whose output feeds the classification layer (``None`` if unclear)."""
    head = model.layers[-1]
    try:
        feeding = head.input
    except (AttributeError, ValueError):
        return None
    for layer in reversed(model.layers[:-1]):
        try:
            if layer.output is feeding:
                return layer.name
        except (AttributeError, ValueError):
            continue
    return None


def feature_layers(model, *, n_stages: int = 2) -> tuple[str, ...]:
    """Layers whose pooled outputs the detector uses, chosen by shape only.

    The last layer at each of the ``n_stages`` smallest spatial resolutions
    (i.e. the end of the last conv stages), then :data:`PENULTIMATE`.

    Args:
        model: A flat Keras image classifier.
        n_stages: How many conv stages to take.

    Returns:
        Layer names (deepest last), ending with :data:`PENULTIMATE`.
    """
    last_at: dict[tuple[int, int], str] = {}
    order: list[tuple[int, int]] = []
    for layer in model.layers[1:-1]:
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            continue
        if len(shape) != 4 or shape[1] is None or shape[2] is None:
            continue
        key = (int(shape[1]), int(shape[2]))
        if key not in last_at:
            order.append(key)
        last_at[key] = layer.name
    # Resolutions in depth order; the stem/first layers at full size are never "last stages".
    chosen = [last_at[key] for key in order[-n_stages:]] if order else []
    return (*chosen, PENULTIMATE)


def resolve_layer(model, name: str) -> str:
    """The model's layer name for a stored name (:data:`PENULTIMATE` is looked up)."""
    if name == PENULTIMATE:
        resolved = penultimate_layer(model)
        if resolved is None:
            raise ModelError("cannot tell which layer feeds the classification layer")
        return resolved
    try:
        model.get_layer(name)
    except ValueError:
        raise ModelError(f"the model has no layer {name!r}") from None
    return name


def pool(output: np.ndarray) -> np.ndarray:
    """Global average pooling of a ``(N, H, W, C)`` output; ``(N, D)`` outputs pass through."""
    output = np.asarray(output, dtype=np.float32)
    if output.ndim == 4:
        return output.mean(axis=(1, 2))
    return output.reshape(len(output), -1)


def layer_features(
    model, images: np.ndarray, layers: Sequence[str], *, batch_size: int = 64
) -> list[np.ndarray]:
    """Pooled outputs of ``layers`` for a batch, in one forward pass per batch.

    Args:
        model: The Keras model.
        images: ``(N, S, S, C)`` model inputs in ``[0, 255]``.
        layers: Names from :func:`feature_layers` (may contain :data:`PENULTIMATE`,
            and :data:`OUTPUT` for the class scores).
        batch_size: Images per forward pass.

    Returns:
        One ``(N, D_l)`` float32 array per layer.
    """
    import keras

    tensors = [
        model.outputs[0] if name == OUTPUT else model.get_layer(resolve_layer(model, name)).output
        for name in layers
    ]
    sub = keras.Model(model.inputs[0], tensors)
    x = np.asarray(images, dtype=np.float32)
    parts: list[list[np.ndarray]] = [[] for _ in tensors]
    for start in range(0, len(x), batch_size):
        outputs = sub(x[start : start + batch_size], training=False)
        if not isinstance(outputs, list | tuple):
            outputs = [outputs]
        for i, out in enumerate(outputs):
            parts[i].append(pool(np.asarray(out)))
    return [np.concatenate(p) if p else np.zeros((0, 0), np.float32) for p in parts]
