"""Images the detector learns "foreign" from: other modalities on disk and generated pictures.

Each :class:`Source` has a modality. A source of the model's own modality
(e.g. PneumoniaMNIST chest films for the 128-px chest X-ray model) is **not**
foreign: the detector must not learn to reject the right kind of image from
another hospital. Such sources are measured and reported, never trained on.
Abdominal X-rays are a different body part and count as foreign for a chest
model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medviz.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".bmp", ".tif", ".tiff")
NON_MEDICAL = "non-medical"


@dataclass(frozen=True)
class Source:
    """One named set of images.

    Attributes:
        name: Name used on the command line and in the card.
        modality: What kind of image it is (compared with the card's modality).
        globs: File patterns below the data root (folder sources).
        dataset: Registry name (npz or generated sources).
        generator: Function ``(n, size, rng) -> (n, size, size) uint8`` (generated sources).
        registry: The registry dataset these images belong to (a model's own
            training data is never a source for its own detector).
    """

    name: str
    modality: str
    globs: tuple[str, ...] = ()
    dataset: str | None = None
    generator: Callable[[int, int, np.random.Generator], np.ndarray] | None = None
    registry: str | None = None

    def __post_init__(self) -> None:
        if self.registry is None and self.dataset is not None:
            object.__setattr__(self, "registry", self.dataset)


# --- generated non-medical images -------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _noise(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for _ in range(n):
        mean, std = rng.uniform(30, 220), rng.uniform(10, 90)
        if rng.random() < 0.5:
            img = rng.normal(mean, std, (size, size))
        else:
            img = rng.uniform(max(0, mean - 2 * std), min(255, mean + 2 * std), (size, size))
        out.append(_to_uint8(img))
    return np.stack(out)


def _gradients(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    xx, yy = _grid(size)
    out = []
    for _ in range(n):
        a, b = rng.uniform(0, 255, 2)
        if rng.random() < 0.5:
            angle = rng.uniform(0, 2 * np.pi)
            t = xx * np.cos(angle) + yy * np.sin(angle)
        else:
            cx, cy = rng.uniform(0, 1, 2)
            t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        t = (t - t.min()) / (np.ptp(t) + 1e-9)
        out.append(_to_uint8(a + (b - a) * t ** rng.uniform(0.5, 2.0)))
    return np.stack(out)


def _checkerboards(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    xx, yy = _grid(size)
    out = []
    for _ in range(n):
        cells = rng.integers(2, 17)
        lo, hi = sorted(rng.uniform(0, 255, 2))
        angle = rng.uniform(0, np.pi) if rng.random() < 0.3 else 0.0
        u = xx * np.cos(angle) - yy * np.sin(angle)
        v = xx * np.sin(angle) + yy * np.cos(angle)
        if rng.random() < 0.3:  # stripes
            board = np.floor(u * cells) % 2
        else:
            board = (np.floor(u * cells) + np.floor(v * cells)) % 2
        out.append(_to_uint8(lo + (hi - lo) * board))
    return np.stack(out)


def _power_law(size: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    fx = np.fft.fftfreq(size)[:, None]
    fy = np.fft.fftfreq(size)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / radius ** (
        beta / 2
    )
    field = np.real(np.fft.ifft2(spectrum))
    return (field - field.mean()) / (field.std() + 1e-9)


def _textures(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Photo-like scenes: 1/f texture, a few soft-edged objects, lighting gradient."""
    xx, yy = _grid(size)
    out = []
    for _ in range(n):
        img = rng.uniform(60, 190) + rng.uniform(15, 50) * _power_law(
            size, rng.uniform(1.2, 2.4), rng
        )
        for _ in range(rng.integers(0, 5)):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.35)
            inside = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
            img = np.where(inside, img * rng.uniform(0.4, 1.6), img)
        img = img * (0.7 + 0.6 * (xx * rng.uniform(-0.5, 0.5) + yy * rng.uniform(-0.5, 0.5) + 0.5))
        out.append(_to_uint8(img))
    return np.stack(out)


def _text(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:"))
    out = []
    for _ in range(n):
        base = 128
        paper, ink = (rng.uniform(200, 255), rng.uniform(0, 60))
        if rng.random() < 0.3:
            paper, ink = ink, paper
        canvas = Image.new("L", (base, base), int(paper))
        draw = ImageDraw.Draw(canvas)
        step = int(rng.integers(9, 16))
        for y in range(2, base - 8, step):
            line = "".join(rng.choice(letters, size=int(rng.integers(8, 26))))
            draw.text((int(rng.integers(0, 12)), y), line, fill=int(ink))
        img = canvas.resize((size, size), Image.BILINEAR) if size != base else canvas
        out.append(np.asarray(img, np.uint8))
    return np.stack(out)


def _shapes(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    out = []
    for _ in range(n):
        canvas = Image.new("L", (size, size), int(rng.uniform(0, 255)))
        draw = ImageDraw.Draw(canvas)
        for _ in range(rng.integers(1, 9)):
            box = sorted(rng.uniform(-0.1, 1.1, 2) * size), sorted(rng.uniform(-0.1, 1.1, 2) * size)
            xy = [box[0][0], box[1][0], box[0][1], box[1][1]]
            fill = int(rng.uniform(0, 255))
            kind = rng.integers(0, 3)
            if kind == 0:
                draw.ellipse(xy, fill=fill)
            elif kind == 1:
                draw.rectangle(xy, fill=fill)
            else:
                points = [tuple(p) for p in rng.uniform(0, size, (int(rng.integers(3, 7)), 2))]
                draw.polygon(points, fill=fill)
        out.append(np.asarray(canvas, np.uint8))
    return np.stack(out)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("ct", "CT", globs=("sars_cov2_ct/*/*",), registry="covid-ct"),
        Source("brain-mri", "MRI", globs=("brain_mri/*/*/*",), registry="brain-mri"),
        Source("brain-tumor-boxes", "MRI", globs=("brain_tumor_boxes/*/*.jpg",)),
        Source(
            "mammo-patches",
            "mammography",
            globs=("mammo_microcalc/*/*/*",),
            registry="mammo-microcalc",
        ),
        Source("synthetic-microcalc", "mammography", dataset="synthetic-microcalc"),
        Source(
            "chest-xray-pneumonia",
            "chest X-ray",
            globs=("chest_xray_pneumonia_224/*/*/*",),
            registry="chest-xray-pneumonia",
        ),
        Source("pneumoniamnist", "chest X-ray", dataset="pneumoniamnist"),
        Source("openi-chest-xray", "chest X-ray", globs=("chest_vs_abd_xray/*/openI_CXR/*",)),
        Source("abdomen-xray", "abdomen X-ray", globs=("chest_vs_abd_xray/*/openI_abd_xray/*",)),
        Source("gen-noise", NON_MEDICAL, generator=_noise),
        Source("gen-gradients", NON_MEDICAL, generator=_gradients),
        Source("gen-checkerboards", NON_MEDICAL, generator=_checkerboards),
        Source("gen-textures", NON_MEDICAL, generator=_textures),
        Source("gen-text", NON_MEDICAL, generator=_text),
        Source("gen-shapes", NON_MEDICAL, generator=_shapes),
    )
}


def same_modality(a: str, b: str) -> bool:
    """Whether two modality strings name the same kind of image (case/space-insensitive)."""
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def get_source(name: str) -> Source:
    """The source called ``name``.

    Raises:
        DataError: Unknown name.
    """
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(f"unknown OOD source {name!r}; known: {sorted(SOURCES)}") from None


def source_files(source: Source, root: Path) -> list[Path]:
    """Image files of a folder source below ``root`` (sorted; empty when absent)."""
    files: set[Path] = set()
    for pattern in source.globs:
        files.update(p for p in root.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(files)


def is_available(source: Source, root: Path) -> bool:
    """Whether ``source`` can be loaded from ``root`` (generated sources always can)."""
    if source.generator is not None:
        return True
    if source.dataset is not None:
        from medviz.data.registry import get_spec

        return get_spec(source.dataset).is_available(root)
    return bool(source_files(source, root))


def load_source(
    source: Source,
    *,
    image_size: int,
    channels: int,
    n: int,
    seed: int = 0,
    root: Path | None = None,
) -> np.ndarray:
    """Up to ``n`` images of ``source`` as model inputs ``(n, S, S, C)`` uint8.

    Folder images are sampled at random (seeded), decoded exactly like uploads
    and resized like every model input; undecodable files are skipped.

    Raises:
        DataError: The source is not available under the data root.
    """
    from medviz.data import to_model_input
    from medviz.data.registry import data_root

    root = root or data_root()
    rng = np.random.default_rng(seed)
    if source.generator is not None:
        grey = source.generator(n, image_size, rng)
        return np.stack([to_model_input(g, image_size=image_size, channels=channels) for g in grey])
    if source.dataset is not None:
        from medviz.data.registry import get_spec

        spec = get_spec(source.dataset)
        # A generator makes exactly what is asked for; generating its default 2400 is slow.
        limit = max(1, n // 2) if spec.kind == "generated" else None
        data = spec.load(
            image_size=image_size, channels=channels, seed=seed, root=root, limit_per_class=limit
        )
        keep = rng.choice(len(data.images), size=min(n, len(data.images)), replace=False)
        return data.images[np.sort(keep)]
    files = source_files(source, root)
    if not files:
        raise DataError(f"OOD source {source.name!r} has no images under {root}")
    from medviz.data import decode_image

    picked = rng.choice(len(files), size=min(n, len(files)), replace=False)
    out = []
    for index in np.sort(picked):
        try:
            pixels = decode_image(files[index]).pixels
            out.append(to_model_input(pixels, image_size=image_size, channels=channels))
        except (DataError, OSError):
            continue  # a broken file is not worth failing the whole fit for
    if not out:
        raise DataError(f"no image of OOD source {source.name!r} could be decoded")
    return np.stack(out)
