"""Which pretrained weights a backbone gets: decided, checked and said before building.

Every transfer architecture gets a :class:`WeightsStatus` *before* its model is
built: ImageNet weights from the local Keras cache (``imagenet-cache``), a file
the user named (``local-file``), the shipped MedViz medical backbone
(``medviz-backbone``) or random initialisation (``random``). Asking for
weights that are not there is a :class:`WeightsMissingError`, never a silent
fallback to random weights; only ``pretrained="none"`` trains from scratch.

ImageNet files are looked up where Keras keeps them (``$MEDVIZ_WEIGHTS_DIR``,
else ``$KERAS_HOME/models``, else ``~/.keras/models``) under Keras' own file
names. When a file is missing, Keras' normal download is tried (machines with
internet keep working as before) unless ``MEDVIZ_OFFLINE=1``; offline, the
download fails and the error says how to proceed. :func:`add_weights` checks a
user's file (architecture and ``include_top=False`` by layer names and weight
shapes of the model Keras builds with ``weights=None``, and Keras' published
MD5 where it has one) and copies it there; :func:`list_weights` shows what is
available.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medviz import backbone
from medviz.errors import ModelError

WeightsSource = Literal["imagenet-cache", "local-file", "medviz-backbone", "random"]
#: Accepted values of ``--pretrained`` besides a file path.
PRETRAINED_CHOICES = ("none", "imagenet", "medviz")
#: Keras' download location of the no-top ImageNet files.
_GCS = "https://storage.googleapis.com/"


class WeightsMissingError(ModelError):
    """Pretrained weights were asked for and are not available."""


@dataclass(frozen=True)
class KerasWeights:
    """A Keras Applications ImageNet backbone and its no-top weight file.

    Attributes:
        arch: MedViz architecture name (:data:`medviz.zoo.ARCHITECTURES`).
        factory: ``keras.applications`` constructor name.
        file_name: File name Keras caches the no-top weights under.
        origin: URL Keras downloads it from.
        md5: Keras' published MD5 of the file (``None``: Keras publishes none).
        marker: A layer name only this family's files hold (``None``: Keras' automatic
            names such as ``conv2d_93``, which depend on what was built before).
        n_weighted: Layers with weights in the no-top model (a quick first check).
        factory_options: Extra constructor options (MobileNetV2's ``alpha``).
    """

    arch: str
    factory: str
    file_name: str
    origin: str
    md5: str | None
    marker: str | None
    n_weighted: int
    factory_options: tuple[tuple[str, float], ...] = ()


def _mobilenet(alpha: float, rows: int = 224) -> KerasWeights:
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"
    arch = "mobilenetv2" if alpha == 1.0 else f"mobilenetv2-{alpha}"
    origin = _GCS + "tensorflow/keras-applications/mobilenet_v2/" + name
    return KerasWeights(arch, "MobileNetV2", name, origin, None, "Conv1", 104, (("alpha", alpha),))


#: The no-top ImageNet files Keras Applications fetches for MedViz's transfer
#: architectures (MD5s copied from the installed ``keras.src.applications``).
KERAS_WEIGHTS: tuple[KerasWeights, ...] = (
    _mobilenet(1.0),
    KerasWeights(
        "efficientnetb0",
        "EfficientNetB0",
        "efficientnetb0_notop.h5",
        _GCS + "keras-applications/efficientnetb0_notop.h5",
        "50bc09e76180e00e4465e1a485ddc09d",
        "stem_conv",
        131,
    ),
    KerasWeights(
        "resnet50",
        "ResNet50",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS
        + "tensorflow/keras-applications/resnet/"
        + "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
        "conv1_conv",
        106,
    ),
    KerasWeights(
        "inceptionv3",
        "InceptionV3",
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS
        + "tensorflow/keras-applications/inception_v3/"
        + "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
        None,
        188,
    ),
)
#: MobileNetV2 widths Keras publishes weights for (only 1.0 is a MedViz architecture;
#: the others are recognised by ``weights add`` so a file of another width is named right).
_MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_ARCHS = tuple(w.arch for w in KERAS_WEIGHTS)
MEDVIZ_ARCHS = ("medviz-backbone",)


@dataclass(frozen=True)
class WeightsStatus:
    """What a backbone was (or will be) initialised from.

    Attributes:
        source: ``"imagenet-cache"``, ``"local-file"``, ``"medviz-backbone"`` or ``"random"``.
        path: The weights file (``None`` for random).
        sha256: Hex SHA-256 of the file (``None`` for random).
    """

    source: WeightsSource
    path: str | None = None
    sha256: str | None = None

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from learned weights."""
        return self.source != "random"

    def describe(self) -> str:
        """One line for people, e.g. ``ImageNet weights: ~/.keras/models/… (sha256 1a2b…)``."""
        titles = {
            "imagenet-cache": "ImageNet weights",
            "local-file": "weights from a local file",
            "medviz-backbone": f"MedViz medical backbone ({backbone.BACKBONE_NAME})",
            "random": "random initialisation (no pretrained weights)",
        }
        if self.path is None:
            return titles[self.source]
        return f"{titles[self.source]}: {self.path} (sha256 {(self.sha256 or '')[:12]}…)"

    def to_card(self) -> dict[str, str | None]:
        """``{"source", "file", "sha256"}`` as the model card records it."""
        return {
            "source": self.source,
            "file": Path(self.path).name if self.path else None,
            "sha256": self.sha256,
        }


def weights_dir() -> Path:
    """Folder of ImageNet weight files: ``$MEDVIZ_WEIGHTS_DIR``, ``$KERAS_HOME/models`` or
    ``~/.keras/models`` (where Keras' own download puts them)."""
    env = os.environ.get("MEDVIZ_WEIGHTS_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    keras_home = os.environ.get("KERAS_HOME", "").strip()
    base = Path(keras_home).expanduser() if keras_home else Path("~/.keras").expanduser()
    return base / "models"


def offline() -> bool:
    """Whether downloads are off (``MEDVIZ_OFFLINE=1``): tests and air-gapped installs."""
    return os.environ.get("MEDVIZ_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def keras_weights(arch: str) -> KerasWeights:
    """The ImageNet file entry of transfer architecture ``arch``.

    Raises:
        ModelError: ``arch`` has no Keras ImageNet weights.
    """
    for entry in KERAS_WEIGHTS:
        if entry.arch == arch:
            return entry
    raise ModelError(
        f"{arch!r} has no Keras ImageNet weights; ImageNet backbones: {IMAGENET_ARCHS}"
    )


def _cached_imagenet_file(entry: KerasWeights) -> Path | None:
    folder = weights_dir()
    exact = folder / entry.file_name
    if exact.is_file():
        return exact
    if entry.factory == "MobileNetV2":
        # Keras names MobileNetV2 files by the input side they were trained at; the weight
        # shapes do not depend on it, so any side of the same width fits.
        stem = entry.file_name.split("_224_")[0]
        others = sorted(folder.glob(f"{stem}_*_no_top.h5"))
        if others:
            return others[-1]
    return None


def _download_imagenet(entry: KerasWeights) -> Path:
    """Keras' normal download into :func:`weights_dir` (raises on failure)."""
    import keras

    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = keras.utils.get_file(
        entry.file_name,
        entry.origin,
        cache_subdir=str(folder.resolve()),
        file_hash=entry.md5,
    )
    return Path(path)


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    return backbone.sha256_of(path)


def _md5_of(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(
    arch: str, pretrained: bool | str | None, *, download: bool = True
) -> WeightsStatus:
    """Decide the initial weights of ``arch`` before building it.

    Args:
        arch: Architecture name.
        pretrained: ``"none"``/``False`` (random), ``"imagenet"``, ``"medviz"``,
            ``True``/``None`` (the architecture's own pretrained weights: ImageNet
            for ImageNet backbones, the MedViz backbone for ``medviz-backbone``),
            or the path of a weights file.
        download: Try Keras' download when ImageNet weights are not cached
            (``False``: a page showing the status before training must not download).

    Returns:
        The :class:`WeightsStatus`; for a non-transfer architecture ``random``.

    Raises:
        WeightsMissingError: The asked-for weights are not available (offline and
            not cached, no shipped backbone, no such file).
        ModelError: A source that does not fit the architecture.
    """
    if arch not in IMAGENET_ARCHS + MEDVIZ_ARCHS:
        if pretrained not in (None, False, "none"):
            raise ModelError(f"{arch!r} is not a transfer architecture; it takes no pretrained=")
        return WeightsStatus("random")
    if pretrained in (False, "none"):
        return WeightsStatus("random")
    if pretrained in (True, None):
        pretrained = "medviz" if arch in MEDVIZ_ARCHS else "imagenet"
    if not isinstance(pretrained, str):
        raise ModelError(f"pretrained must be none, imagenet, medviz or a path, got {pretrained!r}")
    if pretrained == "medviz":
        if arch not in MEDVIZ_ARCHS:
            raise ModelError(
                f"the MedViz backbone is its own architecture: use --arch medviz-backbone, "
                f"not {arch!r} with --pretrained medviz"
            )
        path = backbone.backbone_weights_path()
        if not path.is_file():
            raise WeightsMissingError(
                f"the MedViz backbone weights are not at {path}; restore models/"
                f"{backbone.BACKBONE_NAME}/ (or rebuild it: python -m tools.pretrain_backbone), "
                "or pass --pretrained none to train from random initialisation"
            )
        return WeightsStatus("medviz-backbone", str(path), sha256_of(path))
    if pretrained == "imagenet":
        if arch in MEDVIZ_ARCHS:
            raise ModelError(
                "medviz-backbone has no ImageNet weights; use --pretrained medviz or none"
            )
        entry = keras_weights(arch)
        cached = _cached_imagenet_file(entry)
        if cached is None:
            if not download:
                raise WeightsMissingError(
                    f"ImageNet weights for {arch} are not cached at {weights_dir()}"
                    + ("" if offline() else "; training will try Keras' download")
                )
            cached = _try_download(entry)
        return WeightsStatus("imagenet-cache", str(cached), sha256_of(cached))
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise WeightsMissingError(
            f"pretrained={pretrained!r} is neither none, imagenet, medviz nor an existing file"
        )
    return WeightsStatus("local-file", str(path.resolve()), sha256_of(path))


def _try_download(entry: KerasWeights) -> Path:
    hint = (
        "put the file there with `medviz weights add FILE` (or the Models page), use "
        "--arch medviz-backbone (shipped, offline), or pass --pretrained none to train "
        "from random initialisation"
    )
    where = weights_dir() / entry.file_name
    if offline():
        raise WeightsMissingError(
            f"ImageNet weights for {entry.arch} are not cached at {where} and downloads are "
            f"off (MEDVIZ_OFFLINE=1); {hint}"
        )
    try:
        return _download_imagenet(entry)
    except Exception as err:  # keras raises a bare Exception on download failure
        raise WeightsMissingError(
            f"ImageNet weights for {entry.arch} are not cached at {where} and could not be "
            f"downloaded ({type(err).__name__}: {str(err)[:120]}); {hint}"
        ) from None


# --- checking and adding weight files ----------------------------------------------------------


@dataclass(frozen=True)
class WeightsFile:
    """A weights file available to MedViz (see :func:`list_weights`).

    Attributes:
        arch: Architecture it fits (``mobilenetv2-0.35`` for widths MedViz does not build).
        path: Where it is.
        size_bytes: File size.
        sha256: Hex SHA-256.
        hash_check: ``"matches Keras' MD5"``, ``"no published hash"`` or ``"MD5 differs …"``.
    """

    arch: str
    path: str
    size_bytes: int
    sha256: str
    hash_check: str


def _file_layers(path: Path) -> dict[str, list[tuple[int, ...]]]:
    """``{layer name: [weight shapes]}`` of a Keras (legacy HDF5) weights file."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            group = handle.get("model_weights", handle)
            if "layer_names" not in group.attrs:
                raise ModelError(
                    f"{path.name} is not a Keras Applications weights file (an HDF5 file "
                    "with 'layer_names'; Keras 3 '.weights.h5' files are not ImageNet files)"
                )
            layers: dict[str, list[tuple[int, ...]]] = {}
            for raw in group.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                names = group[name].attrs.get("weight_names", [])
                shapes = [
                    tuple(group[name][w.decode() if isinstance(w, bytes) else w].shape)
                    for w in names
                ]
                if shapes:
                    layers[name] = shapes
            return layers
    except OSError as err:
        raise ModelError(f"{path.name} is not an HDF5 weights file ({err})") from None


def _model_layers(entry: KerasWeights) -> dict[str, list[tuple[int, ...]]]:
    import keras

    factory = getattr(keras.applications, entry.factory)
    options = dict(entry.factory_options)
    shape = (96, 96, 3) if entry.factory == "MobileNetV2" else (None, None, 3)
    model = factory(include_top=False, weights=None, input_shape=shape, **options)
    out: dict[str, list[tuple[int, ...]]] = {}
    for layer in model.layers:
        shapes = [tuple(int(d) for d in w.shape) for w in layer.weights]
        if shapes:
            out[layer.name] = shapes
    keras.backend.clear_session()
    return out


def _candidates(arch: str | None) -> list[KerasWeights]:
    entries = list(KERAS_WEIGHTS) + [_mobilenet(a) for a in _MOBILENET_ALPHAS if a != 1.0]
    if arch is None:
        return entries
    chosen = [e for e in entries if e.arch == arch]
    if not chosen:
        known = [e.arch for e in entries]
        raise ModelError(f"unknown ImageNet architecture {arch!r}; known: {known}")
    return chosen


def _signature_error(
    file_layers: dict[str, list[tuple[int, ...]]],
    model_layers: dict[str, list[tuple[int, ...]]],
    *,
    check_names: bool,
) -> str | None:
    """Why the file does not fit the model, or ``None`` when every layer's shapes match.

    Layers are compared in order, as Keras loads a legacy HDF5 file; names too
    when the family's names are stable (``check_names``).
    """
    tops = [n for n in file_layers if n in ("predictions", "fc1000", "probs", "Logits")]
    if tops:
        return f"it holds a classification top ({tops}); Keras no-top files have none"
    if len(file_layers) != len(model_layers):
        return f"{len(file_layers)} weighted layers, the model has {len(model_layers)}"
    pairs = zip(file_layers.items(), model_layers.items(), strict=True)
    for (file_name, file_shapes), (model_name, model_shapes) in pairs:
        if check_names and file_name != model_name:
            return f"layer {file_name!r} where the model has {model_name!r}"
        if file_shapes != model_shapes:
            return (
                f"layer {file_name!r} has weights {file_shapes}, the model expects {model_shapes}"
            )
    return None


def check_weights_file(path: str | Path, *, arch: str | None = None) -> tuple[KerasWeights, str]:
    """Identify a Keras Applications no-top ImageNet weights file.

    Args:
        path: The ``.h5`` file.
        arch: Expected architecture (``None``: try every known one).

    Returns:
        ``(entry, hash_check)``: the architecture's entry (its Keras file name)
        and the hash verdict (``"matches Keras' MD5"`` or ``"no published hash"``).

    Raises:
        ModelError: Not an HDF5 weights file, no architecture with these layer
            names and shapes, or a published MD5 that differs.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    file_layers = _file_layers(path)
    reasons = []
    candidates = _candidates(arch)
    if arch is None:
        # Building a Keras application takes seconds: only the families whose marker layer
        # the file holds are built and compared.
        candidates = [
            e
            for e in candidates
            if e.n_weighted == len(file_layers) and (e.marker is None or e.marker in file_layers)
        ]
        if not candidates:
            counts = sorted({f"{e.arch.split('-')[0]}: {e.n_weighted}" for e in _candidates(None)})
            reasons.append(f"no family has that many layers ({', '.join(counts)})")
    for entry in candidates:
        model_layers = _model_layers(entry)
        reason = _signature_error(file_layers, model_layers, check_names=entry.marker is not None)
        if reason is None:
            if entry.md5 is None:
                return entry, "no published hash"
            md5 = _md5_of(path)
            if md5 != entry.md5:
                raise ModelError(
                    f"{path.name} has the layers of {entry.arch} but its MD5 {md5} differs from "
                    f"Keras' published {entry.md5}: a modified or truncated file"
                )
            return entry, "matches Keras' MD5"
        reasons.append(f"{entry.arch}: {reason}")
    raise ModelError(
        f"{path.name} is not a Keras Applications include_top=False weights file of "
        f"{arch or 'a known architecture'} ({len(file_layers)} weighted layers): "
        + "; ".join(reasons[:4])
    )


def add_weights(path: str | Path, *, arch: str | None = None) -> WeightsFile:
    """Check a weights file (:func:`check_weights_file`) and copy it where Keras looks.

    Returns:
        The installed file, under Keras' file name in :func:`weights_dir`.
    """
    entry, hash_check = check_weights_file(path, arch=arch)
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.file_name
    temp = folder / f".{entry.file_name}.part"
    shutil.copyfile(path, temp)
    os.replace(temp, target)  # a half-copied file never has Keras' name
    return WeightsFile(
        entry.arch, str(target), target.stat().st_size, sha256_of(target), hash_check
    )


def list_weights() -> list[WeightsFile]:
    """The ImageNet files in :func:`weights_dir` (by Keras file name) and the shipped backbone."""
    found = []
    folder = weights_dir()
    for entry in _candidates(None):
        path = folder / entry.file_name
        if path.is_file():
            verdict = "no published hash"
            if entry.md5 is not None:
                verdict = "matches Keras' MD5" if _md5_of(path) == entry.md5 else "MD5 differs"
            found.append(
                WeightsFile(entry.arch, str(path), path.stat().st_size, sha256_of(path), verdict)
            )
    shipped = backbone.backbone_weights_path()
    if shipped.is_file():
        found.append(
            WeightsFile(
                "medviz-backbone",
                str(shipped),
                shipped.stat().st_size,
                sha256_of(shipped),
                "shipped with MedViz (see its backbone.json)",
            )
        )
    return found
