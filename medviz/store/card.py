"""The model card: what a user of a model needs to know, and its README rendering.

``card.json`` is :meth:`ModelCard.to_dict`; ``README.md`` is
:func:`render_card_markdown` (Hugging Face front matter + Markdown), with the
stress table between :data:`STRESS_BEGIN` and :data:`STRESS_END`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from medviz.errors import ModelError
from medviz.store.atomic import atomic_write_json, atomic_write_text

NOTICE = "Research and teaching only. Not a medical device; not for clinical use."
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
README_FILE = "README.md"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_WEIGHTS = "best.weights.h5"


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
