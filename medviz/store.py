"""Saved models: a folder with ``model.keras``, ``card.json`` and ``README.md``.

A model folder always carries what is needed to use the model: class names,
input size and channels, preprocessing, operating threshold, calibration
temperature and reference feature statistics (for the out-of-distribution
warning). Saves are atomic (write to a temporary sibling, fsync, rename), so
a crash or a full disk never leaves a half-written model where a good one
was. Untrusted files are loaded with Keras ``safe_mode=True``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from medviz.errors import ModelError, OfflineError

NOTICE = "Research and teaching only. Not a medical device; not for clinical use."
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
README_FILE = "README.md"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_WEIGHTS = "best.weights.h5"
HF_PREFIX = "hf://"
_HF_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass(frozen=True)
class ModelCard:
    """Everything a user of a model needs to know, saved beside the weights.

    Attributes:
        name: Folder/repo name, e.g. ``"pneumonia-xray"``.
        title: Human title.
        class_names: Output classes in order.
        image_size: Square input side in pixels.
        channels: 1 (grey) or 3 (RGB).
        modality: Imaging modality the model expects (``"chest X-ray"`` …).
        arch: Architecture name from the registry.
        params: Total parameter count.
        preprocessing: How raw images are turned into model input.
        training: Data (name, licence, split counts), command, config,
            seconds, date, machine.
        metrics: ``{split: Evaluation.to_dict()}`` on held-out data.
        threshold: Operating threshold on P(class 1) for binary models.
        threshold_method: How it was chosen: a policy such as ``"fixed:0.5"``,
            ``"youden"`` or ``"sensitivity:0.95"`` (see
            :func:`medviz.metrics.choose_threshold`); older cards hold a sentence.
        threshold_reason: One line on why this threshold (empty on older cards).
        temperature: Calibration temperature (1.0 = none).
        calibration: ECE before/after temperature scaling.
        stress: Accuracy/AUC under controlled image shifts
            (:meth:`medviz.stress.StressReport.to_dict`), or ``None``.
        reference: Older OOD reference statistics (see :mod:`medviz.ood.reference`),
            used when ``ood`` is absent.
        ood: Fitted OOD detector with its limit and measured rates (see
            :mod:`medviz.ood.detector`; written by ``python -m medviz fit-ood``).
        intended_use: What it is for.
        limitations: What it must not be trusted with.
        licence: Licence of the weights (follows the data's).
        notice: The not-for-clinical-use notice.
        created: ISO timestamp.
        medviz_version: Version that wrote the card.
    """

    name: str
    class_names: tuple[str, ...]
    image_size: int
    channels: int
    title: str = ""
    modality: str = "unknown"
    arch: str = "unknown"
    params: int = 0
    preprocessing: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    threshold_method: str = "argmax"
    threshold_reason: str = ""
    temperature: float = 1.0
    calibration: dict[str, Any] = field(default_factory=dict)
    stress: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    ood: dict[str, Any] | None = None
    intended_use: str = "Research and teaching: exploring what CNNs learn from medical images."
    limitations: tuple[str, ...] = ()
    licence: str = "unknown"
    notice: str = NOTICE
    created: str = ""
    medviz_version: str = ""

    def __post_init__(self) -> None:
        if len(self.class_names) < 2:
            raise ModelError(f"a model card needs at least 2 class names, got {self.class_names}")
        if self.channels not in (1, 3):
            raise ModelError(f"channels must be 1 or 3, got {self.channels}")
        if self.image_size < 1:
            raise ModelError(f"image_size must be positive, got {self.image_size}")
        if self.temperature <= 0:
            raise ModelError(f"temperature must be > 0, got {self.temperature}")

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        values = asdict(self)
        values["class_names"] = list(self.class_names)
        values["limitations"] = list(self.limitations)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelCard:
        """Parse a card, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        try:
            kept["class_names"] = tuple(str(c) for c in kept["class_names"])
            kept["limitations"] = tuple(kept.get("limitations", ()))
            return cls(**kept)
        except (KeyError, TypeError) as err:
            raise ModelError(f"malformed model card: {err}") from None


def default_preprocessing(image_size: int, channels: int) -> dict[str, Any]:
    """The preprocessing every MedViz model uses, spelled out for its card."""
    return {
        "decode": "by content (PNG/JPEG/BMP/PGM/TIFF/DICOM); EXIF orientation applied; DICOM "
        "rescale + VOI LUT/window, MONOCHROME1 inverted",
        "colour": "grey (ITU-R 601 luma)" if channels == 1 else "RGB (grey replicated)",
        "resize": f"square {image_size}×{image_size}, bilinear with antialiasing (aspect not kept)",
        "input_range": "raw pixel values 0–255 as float32; rescaling happens inside the model",
    }


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
        from medviz.inference import calibrated_probabilities, predict_proba

        probs = predict_proba(self.model, images)
        if calibrated:
            probs = calibrated_probabilities(probs, self.card.temperature)
        return probs

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Predicted class per row of ``(N, K)`` probabilities, honouring the card's threshold."""
        if self.card.threshold is not None and probs.shape[1] == 2:
            return (probs[:, 1] >= self.card.threshold).astype(np.int64)
        return probs.argmax(axis=1)


# --- atomic files ------------------------------------------------------------------------------


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temp, 0o644)  # mkstemp makes 0600; cards and READMEs are meant to be read
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (NaN becomes ``null``)."""
    from medviz.cli_support import to_jsonable

    atomic_write_text(path, json.dumps(to_jsonable(payload), indent=2) + "\n")


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
    import medviz

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
        _fsync_file(staging / MODEL_FILE)
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
    from medviz.inference import model_input_spec

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
    from medviz.inference import model_input_spec

    height, _, channels = model_input_spec(model)
    units = int(model.outputs[0].shape[-1])
    n_outputs = 2 if units == 1 else units
    if (height, channels) != (card.image_size, card.channels) or n_outputs != card.n_classes:
        raise ModelError(
            f"model and card disagree: model takes {height}px × {channels} channel(s) and has "
            f"{n_outputs} outputs; card says {card.image_size}px × {card.channels} and "
            f"{card.n_classes} classes {list(card.class_names)}"
        )


def load_bundle(source: str | Path, *, safe_mode: bool = True) -> ModelBundle:
    """Load a model folder, a ``.keras`` file, or ``hf://user/repo``.

    Args:
        source: Folder (with ``model.keras`` and ``card.json``), ``.keras``
            file (the card beside it is used when present), or a Hugging Face
            Hub id ``hf://user/repo`` (downloaded or read from the local cache).
        safe_mode: Keras safe mode; leave on for anything not made by you.

    Raises:
        ModelError: Missing, unsafe, legacy or inconsistent model.
        OfflineError: A Hub model is neither cached nor downloadable.
    """
    text = str(source)
    if text.startswith(HF_PREFIX):
        folder = download_from_hub(text[len(HF_PREFIX) :])
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


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it looks like ``user/repo``, else raise :class:`ModelError`."""
    if not isinstance(repo_id, str) or not _HF_REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise ModelError(
            f"invalid Hugging Face repo id {repo_id!r}; expected 'user/repo' made of letters, "
            "digits, '.', '_' and '-'"
        )
    return repo_id


def download_from_hub(repo_id: str, *, revision: str | None = None) -> Path:
    """Fetch a model repo's ``.keras``, card and README (only those) into the HF cache.

    Works offline from a pre-populated cache (``HF_HUB_OFFLINE=1`` or no
    network). Nothing from the repo is executed.

    Raises:
        ModelError: Invalid repo id or no ``.keras`` file in the repo.
        OfflineError: Not cached and not reachable.
    """
    validate_repo_id(repo_id)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["*.keras", CARD_FILE, README_FILE, "config.json"]
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=patterns)
    except LocalEntryNotFoundError:
        raise OfflineError(
            f"Hugging Face model {repo_id!r} is not in the local cache and the Hub cannot be "
            "reached (offline?). Download it once while online, or load a local .keras file."
        ) from None
    except HfHubHTTPError as err:
        raise ModelError(f"the Hub refused {repo_id!r}: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise OfflineError(f"could not reach the Hugging Face Hub for {repo_id!r}: {err}") from None
    if not list(Path(folder).glob("*.keras")):
        raise ModelError(f"Hugging Face repo {repo_id!r} has no .keras file")
    return Path(folder)


# --- model card as Markdown ----------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def render_card_markdown(card: ModelCard) -> str:
    """The card as a Hugging Face–compatible README (YAML front matter + Markdown)."""
    licence_tag = {"CC BY 4.0": "cc-by-4.0", "CC0-1.0 (generated by MedViz)": "cc0-1.0"}.get(
        card.licence, "other"
    )
    lines = [
        "---",
        "library_name: keras",
        f"license: {licence_tag}",
        "tags:",
        "- medviz",
        "- image-classification",
        "- medical-imaging",
        f"- {card.modality.replace(' ', '-').lower()}",
        "pipeline_tag: image-classification",
        "---",
        "",
        f"# {card.title or card.name}",
        "",
        f"> **{card.notice}**",
        "",
        "## Model",
        f"- Classes: {', '.join(f'`{c}`' for c in card.class_names)}",
        f"- Input: {card.image_size}×{card.image_size}, {card.channels} channel(s); modality: "
        f"{card.modality}",
        f"- Architecture: `{card.arch}`, {card.params:,} parameters",
        f"- Operating threshold: {_fmt(card.threshold)} ({card.threshold_method})",
        *([f"- Why this threshold: {card.threshold_reason}"] if card.threshold_reason else []),
        f"- Calibration temperature: {_fmt(card.temperature)}",
        "",
        "## Preprocessing",
        *(f"- {k}: {v}" for k, v in card.preprocessing.items()),
        "",
        "## Training",
    ]
    training = card.training
    for key in ("dataset", "licence", "split", "counts", "command", "seconds", "machine", "date"):
        if key in training:
            value = training[key]
            if key == "command":
                lines.append(f"- command: `{value}`")
            else:
                lines.append(f"- {key}: {_fmt(value, 1) if isinstance(value, float) else value}")
    lines += [
        "",
        "## Metrics (in-distribution held-out data)",
        "Validation and test here are held-out patients (or image groups) of the source's own "
        "training data: same hospital, devices and period as the training images. Such "
        "figures overstate performance on other hospitals, scanners and periods; see the "
        "robustness table below and try your own data.",
    ]
    split_titles = {"val": "validation", "test": "in-distribution test"}
    for split, m in card.metrics.items():
        ci = m.get("auc_ci") or [None, None]
        lines.append(
            f"- **{split_titles.get(split, split)}** (n={m.get('n')}): "
            f"accuracy {_fmt(m.get('accuracy'))}, "
            f"balanced accuracy {_fmt(m.get('balanced_accuracy'))}, AUC {_fmt(m.get('auc'))} "
            f"[95 % CI {_fmt(ci[0])}–{_fmt(ci[1])}], ECE {_fmt(m.get('ece'))}"
        )
        for row in m.get("per_class", []):
            lines.append(
                f"  - `{row['name']}`: sensitivity {_fmt(row.get('recall'))}, specificity "
                f"{_fmt(row.get('specificity'))}, precision {_fmt(row.get('precision'))}, "
                f"F1 {_fmt(row.get('f1'))}"
            )
    if card.calibration:
        lines += ["", "## Calibration", *(f"- {k}: {_fmt(v)}" for k, v in card.calibration.items())]
    if card.stress:
        lines += ["", render_stress_markdown(card.stress)]
    if card.ood:
        lines += ["", "## Out-of-distribution check", *_ood_lines(card.ood)]
    lines += ["", "## Intended use", card.intended_use, "", "## Limitations"]
    lines += [f"- {item}" for item in card.limitations] or ["- None recorded."]
    lines += ["", "## Licence", f"Weights follow the data's licence: {card.licence}.", ""]
    return "\n".join(lines)


STRESS_BEGIN = "<!-- medviz:stress -->"
STRESS_END = "<!-- /medviz:stress -->"


def render_stress_markdown(stress: dict[str, Any]) -> str:
    """A card's stress report as a Markdown section: shift × severity, accuracy / AUC.

    The section sits between :data:`STRESS_BEGIN` and :data:`STRESS_END`
    (HTML comments, invisible on the Hub) so :func:`write_card_stress` can
    replace it in any README.

    Args:
        stress: :meth:`medviz.stress.StressReport.to_dict`.
    """
    severities = list(stress.get("severities", []))
    clean = stress.get("clean", {})
    split, dataset = stress.get("split"), stress.get("dataset")
    where = f"the {split} split" if split else "held-out data"
    if dataset:
        where += f" of {dataset}"
    n_note = f"n={stress.get('n')}"
    if stress.get("n_available") not in (None, stress.get("n")):
        n_note += f" of {stress['n_available']}, seed {stress.get('seed', 0)}"
    rule = "argmax" if stress.get("threshold") is None else f"threshold {_fmt(stress['threshold'])}"
    worst = (stress.get("worst") or {}).get("shift")
    lines = [
        STRESS_BEGIN,
        "## Robustness (stress test)",
        f"Accuracy / AUC on {where} ({n_note}, {rule}) under controlled image shifts of "
        f"increasing severity (`python -m medviz stress`). Clean (severity 0): accuracy "
        f"{_fmt(clean.get('accuracy'))}, AUC {_fmt(clean.get('auc'))}."
        + (f" Worst shift: {worst}." if worst else ""),
        "",
        "| shift (parameter) | " + " | ".join(f"severity {s}" for s in severities) + " |",
        "|---|" + "---|" * len(severities),
    ]
    for name, row in (stress.get("shifts") or {}).items():
        levels = ", ".join(f"{v:g}" for v in row.get("levels", []))
        cells = [
            f"{_fmt(a)} / {_fmt(u)}"
            for a, u in zip(row.get("accuracy", []), row.get("auc", []), strict=False)
        ]
        title = f"{row.get('title', name)} ({row.get('parameter', '')}: {levels})"
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append(STRESS_END)
    return "\n".join(lines)


def write_card_stress(folder: str | Path, stress: dict[str, Any]) -> ModelCard:
    """Store a stress report in an existing model folder's ``card.json`` and ``README.md``.

    The weights and every other card entry are left as they are (keys this
    version does not know included). In the README the stress section is
    replaced when present, else inserted before "## Intended use" (appended
    when that heading is missing). Both files are written atomically.

    Args:
        folder: A model folder (with ``card.json``).
        stress: :meth:`medviz.stress.StressReport.to_dict`.

    Returns:
        The updated card.

    Raises:
        ModelError: No readable ``card.json`` in ``folder``.
    """
    folder = Path(folder)
    card_file = folder / CARD_FILE
    try:
        values = json.loads(card_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} has no {CARD_FILE}: write-card needs a model folder") from None
    except json.JSONDecodeError as err:
        raise ModelError(f"{card_file} is not valid JSON: {err}") from None
    values["stress"] = stress
    card = ModelCard.from_dict(values)
    readme_file = folder / README_FILE
    readme = readme_file.read_text(encoding="utf-8") if readme_file.exists() else ""
    section = render_stress_markdown(stress)
    if STRESS_BEGIN in readme and STRESS_END in readme:
        head, rest = readme.split(STRESS_BEGIN, 1)
        readme = head + section + rest.split(STRESS_END, 1)[1]
    elif "\n## Intended use" in readme:
        head, rest = readme.split("\n## Intended use", 1)
        readme = head + "\n" + section + "\n\n## Intended use" + rest
    elif readme:
        readme = readme.rstrip("\n") + "\n\n" + section + "\n"
    else:
        readme = render_card_markdown(card)
    atomic_write_json(card_file, values)
    atomic_write_text(readme_file, readme)
    return card


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _ood_lines(ood: dict[str, Any]) -> list[str]:
    """README lines for a card's fitted OOD detector and what it measured."""
    rates = ood.get("rates", {})
    pct = _pct
    layers = ", ".join(f"`{layer.get('layer')}`" for layer in ood.get("layers", []))
    lines = [
        f"- Method: {ood.get('method', 'fitted detector')}; limit {_fmt(ood.get('limit'))}; "
        f"layers: {layers}",
        f"- Fitted on the `{rates.get('data', '?')}` validation split against other modalities "
        f"and generated images ({rates.get('fitted', '?')}); "
        "re-run with `python -m medviz fit-ood --model <folder> --write-card` after retraining.",
        f"- In-domain images flagged: held-out test {pct(rates.get('in_domain_test'))} "
        f"(n={rates.get('n_test', '?')}), validation out-of-fold "
        f"{pct(rates.get('in_domain_val_out_of_fold'))}",
    ]
    foreign = rates.get("foreign", {})
    if foreign:
        lines += [
            "",
            "| foreign source | modality | n | flagged | flagged when left out of the fit |",
            "|---|---|---|---|---|",
        ]
        for name, row in foreign.items():
            lines.append(
                f"| {name} | {row.get('modality', '')} | {row.get('n', '')} | "
                f"{pct(row.get('flagged'))} | {pct(row.get('leave_one_out'))} |"
            )
    same = rates.get("same_modality", {})
    if same:
        lines += [
            "",
            "Same modality, other sources (not trained on; a flag here is a false alarm "
            "or a real shift):",
        ]
        lines += [
            f"- {name}: {pct(row.get('flagged'))} of {row.get('n')}" for name, row in same.items()
        ]
    return lines


# --- run store ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """One training run on disk: ``runs/<id>/``.

    Files: ``run.json`` (config, status, timestamps), ``history.json``
    (per-epoch logs, rewritten after every epoch), ``metrics.json`` and
    ``model/`` (a model folder) once finished. Every file is written
    atomically, so a killed process leaves the last complete state.
    """

    run_id: str
    folder: Path
    status: str
    config: dict[str, Any]
    started: str
    finished: str | None
    pid: int | None = None

    @property
    def model_folder(self) -> Path:
        """Where the finished model lives."""
        return self.folder / "model"

    @property
    def checkpoint_folder(self) -> Path:
        """Where the best weights so far and their card live while the run trains."""
        return self.folder / CHECKPOINT_DIR


class RunStore:
    """A folder of training runs (default ``runs/``)."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    def create(self, config: dict[str, Any], *, label: str = "run") -> RunRecord:
        """Start a run: a new ``runs/<timestamp>-<label>-<random>/`` with ``run.json``."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label)[:40] or "run"
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{uuid.uuid4().hex[:6]}"
        folder = self.root / run_id
        folder.mkdir(parents=True)
        record = RunRecord(run_id, folder, "running", config, _now(), None, os.getpid())
        self._write(record)
        return record

    def save_checkpoint_card(self, record: RunRecord, card: ModelCard) -> None:
        """Write the card describing the run's checkpoint weights (atomically).

        The weights themselves (``checkpoint/best.weights.h5``) are written
        atomically by :func:`medviz.training.train` via ``checkpoint_path``.
        """
        atomic_write_json(record.checkpoint_folder / CARD_FILE, card.to_dict())

    def load_checkpoint(self, record: RunRecord) -> ModelBundle:
        """The best model of a run so far, from its checkpoint (also of a killed run).

        The architecture is rebuilt from the registry by name (no code is
        loaded from disk) and the last completely written weights file is
        loaded; temporary files of an interrupted write are never read.

        Raises:
            ModelError: The run has no complete checkpoint yet.
        """
        from medviz.zoo import ARCHITECTURES, build_model

        folder = record.checkpoint_folder
        weights, card_file = folder / CHECKPOINT_WEIGHTS, folder / CARD_FILE
        if not (weights.is_file() and card_file.is_file()):
            raise ModelError(f"run {record.run_id} has no complete checkpoint yet (no epoch ended)")
        try:
            card = ModelCard.from_dict(json.loads(card_file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            raise ModelError(f"run {record.run_id}: checkpoint card unreadable: {err}") from None
        if card.arch not in ARCHITECTURES:
            raise ModelError(f"run {record.run_id}: unknown architecture {card.arch!r}")
        options = dict(card.training.get("arch_options") or {})
        if ARCHITECTURES[card.arch].transfer:
            options["pretrained"] = False  # the checkpoint holds every weight
        model = build_model(
            card.arch, (card.image_size, card.image_size, card.channels), card.n_classes, **options
        )
        try:
            model.load_weights(weights)
        except (OSError, ValueError) as err:
            raise ModelError(f"run {record.run_id}: checkpoint weights unreadable: {err}") from None
        return ModelBundle(model=model, card=card, path=None)

    def log_history(self, record: RunRecord, history: dict[str, list[float]]) -> None:
        """Replace the run's history (call after every epoch)."""
        atomic_write_json(record.folder / "history.json", history)

    def finish(
        self,
        record: RunRecord,
        *,
        model: Any,
        card: ModelCard,
        metrics: dict[str, Any],
        status: str = "finished",
    ) -> RunRecord:
        """Save the model and metrics, then mark the run ``status``."""
        save_bundle(model, card, record.model_folder)
        atomic_write_json(record.folder / "metrics.json", metrics)
        done = replace(record, status=status, finished=_now())
        self._write(done)
        return done

    def fail(self, record: RunRecord, reason: str) -> RunRecord:
        """Mark a run as failed (or stopped before any model existed)."""
        done = replace(record, status=f"failed: {reason}"[:200], finished=_now())
        self._write(done)
        return done

    def list(self) -> list[RunRecord]:
        """Every readable run, newest first; half-written folders are skipped.

        A run whose ``run.json`` says ``running`` but whose process no longer
        exists is reported as ``interrupted``.
        """
        records = []
        for run_json in self.root.glob("*/run.json"):
            try:
                values = json.loads(run_json.read_text(encoding="utf-8"))
                pid = values.get("pid")
                status = values["status"]
                same_host = values.get("host") in (None, socket.gethostname())
                if status == "running" and same_host and not _process_alive(pid):
                    status = "interrupted"  # the process died (killed, crashed, power cut)
                records.append(
                    RunRecord(
                        values["run_id"],
                        run_json.parent,
                        status,
                        values["config"],
                        values["started"],
                        values.get("finished"),
                        pid,
                    )
                )
            except (OSError, ValueError, KeyError):
                continue
        return sorted(records, key=lambda r: r.run_id, reverse=True)

    def history(self, record: RunRecord) -> dict[str, list[float]]:
        """The run's latest complete history ({} before the first epoch)."""
        path = record.folder / "history.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def _write(self, record: RunRecord) -> None:
        atomic_write_json(
            record.folder / "run.json",
            {
                "run_id": record.run_id,
                "status": record.status,
                "config": record.config,
                "started": record.started,
                "finished": record.finished,
                "pid": record.pid,
                "host": socket.gethostname(),
            },
        )


def _process_alive(pid: object) -> bool:
    """Whether process ``pid`` of this machine still runs (unknown pids count as alive)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
