"""Export a model for deployment (SavedModel, LiteRT, ONNX) and prove the export answers alike.

Every format is written by Keras 3's own ``Model.export`` (``tf_saved_model``,
``litert`` through TensorFlow's LiteRT converter, ``onnx`` through tf2onnx), so
MedViz carries no converter code. An export is only kept after it has been
re-loaded by the runtime a deployment would use (``tf.saved_model.load``,
the LiteRT interpreter, ``onnxruntime``) and its probabilities on a few images
agree with the ``.keras`` model's: :class:`ExportResult` reports the largest
absolute difference.

The exported graph is the model itself: raw pixel values 0–255 as float32
``(N, S, S, C)`` in, the uncalibrated softmax ``(N, K)`` out (scaling is a layer
inside the model). ``card.json`` and ``README.md`` are copied beside it, since
the class names, calibration temperature and threshold live there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medviz.errors import ModelError

ExportFormat = Literal["savedmodel", "litert", "onnx"]

# format → (Keras export format, artefact name inside the output folder)
_ARTEFACTS: dict[str, tuple[str, str]] = {
    "savedmodel": ("tf_saved_model", "saved_model"),
    "litert": ("litert", "model.tflite"),
    "onnx": ("onnx", "model.onnx"),
}
FORMATS: tuple[str, ...] = tuple(_ARTEFACTS)
DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportResult:
    """One export and its check against the ``.keras`` model.

    Attributes:
        format: ``"savedmodel"``, ``"litert"`` or ``"onnx"``.
        path: The artefact: a SavedModel folder, a ``.tflite`` or an ``.onnx`` file.
        folder: The output folder (artefact + the model's ``card.json`` and ``README.md``).
        runtime: What re-loaded it, with its version.
        n_images: Images the probabilities were compared on.
        max_abs_diff: Largest absolute difference of any class probability.
        tolerance: Largest difference accepted.
        size_bytes: Size of the artefact on disk.
        seconds: Export plus check, wall clock.
    """

    format: str
    path: Path
    folder: Path
    runtime: str
    n_images: int
    max_abs_diff: float
    tolerance: float
    size_bytes: int
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the export answers like the ``.keras`` model within ``tolerance``."""
        return bool(self.max_abs_diff <= self.tolerance)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        return {
            "format": self.format,
            "path": str(self.path),
            "folder": str(self.folder),
            "runtime": self.runtime,
            "n_images": self.n_images,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 2),
        }


def check_images(model: Any, *, n: int = 8, seed: int = 0) -> np.ndarray:
    """Seeded test images for the comparison: noise, ramps and blobs, ``(n, S, S, C)`` float32.

    Varied content (flat, smooth, noisy) so every layer is exercised; values are
    whole numbers 0–255 like decoded pixels.
    """
    from medviz.inference import model_input_spec

    size, _, channels = model_input_spec(model)
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, size)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images = []
    for k in range(n):
        kind = k % 3
        if kind == 0:
            image = rng.integers(0, 256, (size, size))
        elif kind == 1:
            image = 255 * (xx * rng.uniform(0.2, 1) + yy * rng.uniform(0, 0.8)) / 1.8
        else:
            cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.3)
            image = 40 + 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
        images.append(np.repeat(np.rint(image)[..., None], channels, axis=-1))
    return np.clip(np.stack(images), 0, 255).astype(np.float32)


def _saved_model_predict(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return (
        lambda x: np.asarray(loaded.serve(tf.constant(x)))
    ), f"tf.saved_model.load (TF {tf.__version__})"


def _litert_predict(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    try:  # the maintained LiteRT runtime, when installed
        from ai_edge_litert.interpreter import Interpreter

        runtime = "ai_edge_litert Interpreter"
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
        runtime = f"tf.lite.Interpreter (TF {tf.__version__})"
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that it is deprecated
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_path=str(path))

    def predict(x: np.ndarray) -> np.ndarray:
        source = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(source["index"], list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

    return predict, runtime


def _onnx_predict(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            "checking an ONNX export needs onnxruntime: pip install 'medviz[export]'"
        ) from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return (lambda x: np.asarray(session.run(None, {name: x})[0])), f"onnxruntime {ort.__version__}"


_LOADERS = {"savedmodel": _saved_model_predict, "litert": _litert_predict, "onnx": _onnx_predict}


def _require_converter(format: str) -> None:
    if format == "onnx":
        try:
            import onnx  # noqa: F401
            import tf2onnx  # noqa: F401
        except ImportError:
            raise ModelError(
                "ONNX export needs tf2onnx and onnx: pip install 'medviz[export]'"
            ) from None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def export_model(
    model: Any,
    *,
    format: ExportFormat,
    out: str | Path,
    images: np.ndarray | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export a model and check the export gives the same probabilities.

    Args:
        model: A model folder / ``.keras`` path / ``hf://`` id (loaded with
            ``safe_mode=True``), a :class:`medviz.store.ModelBundle`, or a Keras model.
        format: ``"savedmodel"``, ``"litert"`` or ``"onnx"``.
        out: Output folder; it receives the artefact (``saved_model/``,
            ``model.tflite`` or ``model.onnx``) and the card files. An
            artefact already there is replaced only once the new one has been
            re-loaded and run (a failed export leaves it untouched).
        images: Model inputs ``(N, S, S, C)`` (raw pixel values 0–255) to
            compare on; default :func:`check_images` (8 seeded images).
        tolerance: Largest accepted absolute difference of a probability.

    Returns:
        The :class:`ExportResult`; when the difference exceeds ``tolerance``
        the artefact is still written (to inspect) and ``ok`` is False.

    Raises:
        ValueError: ``format`` is not one of :data:`FORMATS`.
        ModelError: The model cannot be loaded, the converter is missing or
            fails, or the export cannot be re-loaded.
    """
    if format not in _ARTEFACTS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    keras_format, artefact_name = _ARTEFACTS[format]
    _require_converter(format)
    started = time.perf_counter()
    keras_model, card = _resolve(model)
    x = check_images(keras_model) if images is None else np.asarray(images, dtype=np.float32)
    reference = np.asarray(keras_model.predict(x, verbose=0))

    out = Path(out)
    staging = out.parent / f".{out.name}.exporting-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
        staged = staging / artefact_name
        try:
            # Converters print progress on stdout; a --json caller owns stdout.
            with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                keras_model.export(str(staged), format=keras_format, verbose=False)
        except (ValueError, TypeError, RuntimeError, ImportError) as err:
            raise ModelError(
                f"{format} export failed: {' '.join(str(err).split())[:300]}"
            ) from None
        try:
            predict, runtime = _LOADERS[format](staged)
            got = predict(x)
        except ModelError:
            raise
        except Exception as err:  # each runtime has its own error types
            raise ModelError(
                f"the {format} export could not be re-loaded and run: "
                f"{' '.join(str(err).split())[:300]}"
            ) from None
        if got.shape == reference.shape and got.size:
            diff = float(np.max(np.abs(got.astype(np.float64) - reference)))
        else:  # a wrong output shape can never match
            diff = float("inf")
        out.mkdir(parents=True, exist_ok=True)
        target = out / artefact_name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(staged, target)
        if card is not None:
            from medviz.store import CARD_FILE, README_FILE, render_card_markdown
            from medviz.store.atomic import atomic_write_json, atomic_write_text

            atomic_write_json(out / CARD_FILE, card.to_dict())
            atomic_write_text(out / README_FILE, render_card_markdown(card))
    except OSError as err:
        raise ModelError(f"could not write the export to {out}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(
        format=format,
        path=target,
        folder=out,
        runtime=runtime,
        n_images=len(x),
        max_abs_diff=diff,
        tolerance=tolerance,
        size_bytes=_size(target),
        seconds=time.perf_counter() - started,
    )


def _resolve(model: Any) -> tuple[Any, Any]:
    """A Keras model and its :class:`medviz.store.ModelCard` (``None`` for a bare Keras model)."""
    from medviz.store import ModelBundle, load_bundle

    if isinstance(model, str | Path):
        model = load_bundle(model, safe_mode=True)
    if isinstance(model, ModelBundle):
        return model.model, model.card
    if hasattr(model, "export") and hasattr(model, "predict"):
        return model, None
    raise ModelError(
        f"expected a model folder, .keras file, hf:// id, ModelBundle or Keras model; "
        f"got {type(model).__name__}"
    )
