"""Card files, model READMEs and the README's table of shipped models.

Every figure is read from a card; nothing here trains or measures. The table
(:func:`render_shipped_table`) reads ``card.json`` files only, loading no
model, so the test that keeps ``README.md`` in step with the cards is
cheap. The model README's extra sections are the library's
(:mod:`medviz.model_readme`), so :func:`medviz.ood.fit.write_detector` keeps
them when it rewrites a card.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.make_models.recipes import MODELS, REPO_ROOT

README_BEGIN = "<!-- shipped-models:begin (python -m tools.make_models --readme) -->"
README_END = "<!-- shipped-models:end -->"


def fmt(value: Any, digits: int = 3) -> str:
    """``value`` for a Markdown table: floats to ``digits`` places, ``None`` as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def with_ci(value: Any, ci: Sequence[Any] | None) -> str:
    """``fmt(value)`` followed by ``[low–high]`` when the interval is known."""
    text = fmt(value)
    if ci and all(v is not None for v in ci):
        text += f" [{ci[0]:.3f}–{ci[1]:.3f}]"
    return text


def card_dict(folder: Path, card) -> dict[str, Any]:
    """``card.to_dict()`` with the ``created``/``medviz_version`` that ``save_bundle`` stamped."""
    from medviz.store import CARD_FILE

    saved = json.loads((Path(folder) / CARD_FILE).read_text(encoding="utf-8"))
    values = card.to_dict()
    for key in ("created", "medviz_version"):
        values[key] = values.get(key) or saved.get(key, "")
    return values


def render_readme(card) -> str:
    """The library's card Markdown plus the sections make_models adds (figures from the card)."""
    from medviz.model_readme import built_sections
    from medviz.store import render_card_markdown

    return render_card_markdown(card) + "\n" + built_sections(card) + "\n"


def render_shipped_table(models_dir: Path = REPO_ROOT / MODELS) -> str:
    """The README's table of shipped models, every figure read from their ``card.json``.

    Reads JSON only (loads no model), so the test that keeps the README in step
    with the cards is cheap.
    """
    lines = [
        "| model | classes | input | arch, params | val accuracy [95 % CI] | val AUC [95 % CI] "
        "| in-distribution test accuracy | test AUC | ECE (val, after temperature) | training "
        "| size |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for folder in sorted(p for p in Path(models_dir).iterdir() if (p / "card.json").exists()):
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        metrics = card.get("metrics", {})
        val, test = metrics.get("val", {}), metrics.get("test", {})
        training = card.get("training", {})
        size = (folder / "model.keras").stat().st_size if (folder / "model.keras").exists() else 0
        lines.append(
            f"| [`{card['name']}`](models/{folder.name}/README.md) "
            f"| {', '.join(card['class_names'])} "
            f"| {card['image_size']}×{card['image_size']}×{card['channels']} "
            f"| {card['arch']}, {card['params']:,} "
            f"| {with_ci(val.get('accuracy'), val.get('accuracy_ci'))} "
            f"| {with_ci(val.get('auc'), val.get('auc_ci'))} "
            f"| {fmt(test.get('accuracy'))} | {fmt(test.get('auc'))} | {fmt(val.get('ece'))} "
            f"| {fmt(training.get('seconds'), 0)} s on {training.get('machine', '?')} "
            f"| {size / 1e6:.1f} MB |"
        )
    return "\n".join(lines)


def update_readme(
    path: Path = REPO_ROOT / "README.md", *, models_dir: Path = REPO_ROOT / MODELS
) -> bool:
    """Rewrite the shipped-models block of ``path`` from the cards; ``True`` if it changed.

    Raises:
        SystemExit: The README lacks the begin/end markers.
    """
    from medviz.docblocks import update_file

    try:
        return update_file(Path(path), README_BEGIN, README_END, render_shipped_table(models_dir))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
