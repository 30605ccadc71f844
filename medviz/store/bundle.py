"""A model folder (``model.keras`` + ``card.json`` + ``README.md``): save and load.

Saves are atomic; untrusted files are loaded with Keras ``safe_mode=True``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import medviz
from medviz.errors import ModelError
from medviz.inference import calibrated_probabilities, model_input_spec, predict_proba
from medviz.store.atomic import atomic_write_json, atomic_write_text, fsync_file
from medviz.store.card import (
    CARD_FILE,
    MODEL_FILE,
    README_FILE,
    ModelCard,
    default_preprocessing,
    render_card_markdown,
)
from medviz.store.hub import HF_PREFIX, download_from_hub, parse_hub_source


@dataclass
class ModelBundle:
    """A loaded model with its card.

    Attributes:
        model: The Keras model.
        card: Its model card.
        path: Where it was loaded from (``None`` when built in memory).
    """

    model: Any
    card: ModelCard
    path: Path | None = None

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """Decoded native pixels ``(H, W)`` or ``(H, W, C)`` → model input ``(S, S, C)`` float32."""
        from medviz.data.images import to_model_input

        return to_model_input(
            pixels, image_size=self.card.image_size, channels=self.card.channels
        ).astype(np.float32)

    def predict_proba(self, images: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Probabilities ``(N, K)`` for a uint8 batch of any size, temperature-scaled by default."""
        probs = predict_proba(self.model, images)
        if calibrated:
            probs = calibrated_probabilities(probs, self.card.temperature)
        return probs

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Predicted class per row of ``(N, K)`` probabilities, honouring the card's threshold."""
        if self.card.threshold is not None and probs.shape[1] == 2:
            return (probs[:, 1] >= self.card.threshold).astype(np.int64)
        return probs.argmax(axis=1)


# --- save / load -------------------------------------------------------------------------------


def save_bundle(model: Any, card: ModelCard, folder: str | Path) -> Path:
    """Save a model folder atomically; an existing folder is replaced only on success.

    Args:
        model: The Keras model.
        card: Its card.
        folder: Destination folder.

    Returns:
        The folder.

    Raises:
        ModelError: The folder can't be written (read-only, disk full …);
            any previous model there is left untouched.
    """

    folder = Path(folder)
    card = replace(
        card,
        created=card.created or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        medviz_version=card.medviz_version or medviz.__version__,
    )
    staging = folder.parent / f".{folder.name}.saving-{uuid.uuid4().hex[:8]}"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        model.save(staging / MODEL_FILE)
        fsync_file(staging / MODEL_FILE)
        atomic_write_json(staging / CARD_FILE, card.to_dict())
        atomic_write_text(staging / README_FILE, render_card_markdown(card))
        if folder.exists():
            retired = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, retired)
            os.replace(staging, folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, folder)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(
            f"could not save the model to {folder}: {err.strerror or err}; "
            "the previous model there (if any) is unchanged"
        ) from None
    return folder


def _resolve_model_file(path: Path) -> Path:
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            raise ModelError(
                f"{path} is a TensorFlow SavedModel; MedViz loads Keras 3 '.keras' files. "
                "Convert it: load it in TensorFlow and call model.save('model.keras')."
            )
        if (path / MODEL_FILE).exists():
            return path / MODEL_FILE
        candidates = sorted(path.glob("*.keras"))
        if len(candidates) == 1:
            return candidates[0]
        raise ModelError(
            f"{path} holds {len(candidates)} .keras files; expected one (ideally {MODEL_FILE})"
        )
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        raise ModelError(
            f"{path.name} is a legacy HDF5 model; convert it to the Keras 3 format: "
            "keras.models.load_model(old).save('model.keras') in a trusted environment"
        )
    if suffix != ".keras":
        raise ModelError(f"{path.name}: expected a '.keras' file or a model folder, got {suffix!r}")
    return path


def _infer_card(model: Any, name: str) -> ModelCard:
    height, _, channels = model_input_spec(model)
    units = int(model.outputs[0].shape[-1])
    n_classes = 2 if units == 1 else units
    return ModelCard(
        name=name,
        class_names=tuple(f"class {i}" for i in range(n_classes)),
        image_size=height,
        channels=channels,
        preprocessing=default_preprocessing(height, channels),
        limitations=("No model card was found: class names and preprocessing are guesses.",),
    )


def load_model_file(path: str | Path, *, safe_mode: bool = True) -> Any:
    """Load a ``.keras`` file with Keras, turning its failures into :class:`ModelError`."""
    import keras

    path = Path(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    except (ValueError, TypeError, OSError, KeyError) as err:
        text = str(err)
        if "Lambda" in text or "safe_mode" in text or "arbitrary code" in text:
            raise ModelError(
                f"{path.name} was refused: it contains a Lambda layer or other custom code, which "
                "could run arbitrary code on this server. Rebuild the model from standard layers."
            ) from None
        if "Could not locate" in text or "Unknown layer" in text or "custom" in text.lower():
            raise ModelError(
                f"{path.name} uses a custom layer or object MedViz does not know; "
                "only models made of standard Keras layers can be loaded"
            ) from None
        raise ModelError(f"could not load {path.name}: {text.splitlines()[0][:300]}") from None


def validate_against_card(model: Any, card: ModelCard) -> None:
    """Raise :class:`ModelError` if the model's input/output disagree with its card."""
    height, _, channels = model_input_spec(model)
    units = int(model.outputs[0].shape[-1])
    n_outputs = 2 if units == 1 else units
    if (height, channels) != (card.image_size, card.channels) or n_outputs != card.n_classes:
        raise ModelError(
            f"model and card disagree: model takes {height}px × {channels} channel(s) and has "
            f"{n_outputs} outputs; card says {card.image_size}px × {card.channels} and "
            f"{card.n_classes} classes {list(card.class_names)}"
        )


def load_bundle(
    source: str | Path, *, safe_mode: bool = True, revision: str | None = None
) -> ModelBundle:
    """Load a model folder, a ``.keras`` file, or ``hf://user/repo[@revision]``.

    Args:
        source: Folder (with ``model.keras`` and ``card.json``), ``.keras``
            file (the card beside it is used when present), or a Hugging Face
            Hub id ``hf://user/repo`` (downloaded or read from the local
            cache), optionally pinned: ``hf://user/repo@v1`` (branch, tag or
            commit id).
        safe_mode: Keras safe mode; leave on for anything not made by you.
        revision: Hub revision (overrides one written after ``@``); ignored for
            local paths.

    Raises:
        ModelError: Missing, unsafe, legacy or inconsistent model.
        OfflineError: A Hub model is neither cached nor downloadable.
    """
    text = str(source)
    if text.startswith(HF_PREFIX):
        repo_id, pinned = parse_hub_source(text)
        folder = download_from_hub(repo_id, revision=revision or pinned)
        return load_bundle(folder, safe_mode=safe_mode)
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelError(f"model path {path} does not exist")
    model_file = _resolve_model_file(path)
    model = load_model_file(model_file, safe_mode=safe_mode)
    card_file = model_file.parent / CARD_FILE
    try:
        if card_file.exists():
            try:
                card = ModelCard.from_dict(json.loads(card_file.read_text(encoding="utf-8")))
            except json.JSONDecodeError as err:
                raise ModelError(f"{CARD_FILE} is not valid JSON: {err}") from None
            validate_against_card(model, card)
        else:
            card = _infer_card(model, model_file.parent.name)
    except ModelError as err:  # name the file: "model input must have a fixed size …"
        raise ModelError(f"{model_file.name}: {err}; refused before running it") from None
    return ModelBundle(model=model, card=card, path=model_file.parent)
