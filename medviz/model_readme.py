"""The ``README.md`` of a model folder, with the sections of cards made by ``tools.make_models``.

:func:`medviz.store.render_card_markdown` renders every card. The cards of
the shipped models (``python -m tools.make_models``) carry more facts in
``card.training`` (accuracy intervals, the reproduce line, BatchNorm
statistics, duplicates, footprint), and their README shows them in extra
sections. Any code that rewrites such a card (``tools.make_models`` itself,
:func:`medviz.ood.fit.write_detector`) renders its README here, so those
sections are never lost. Every figure comes from the card.
"""

from __future__ import annotations

from collections.abc import Sequence

from medviz.store import ModelCard, render_card_markdown

BUILT_BY = "tools.make_models"
"""The tool whose cards carry the extra sections (named in their heading)."""


def _ci(values: Sequence[float | None] | None) -> str:
    if not values or any(v is None for v in values):
        return "–"
    return f"{values[0]:.3f}–{values[1]:.3f}"


def is_built_card(card: ModelCard) -> bool:
    """Whether ``card`` was written by ``tools.make_models`` (it records a reproduce line)."""
    return "reproduce" in card.training


def built_sections(card: ModelCard) -> str:
    """The Markdown sections ``tools.make_models`` adds to the card's README.

    Args:
        card: A card whose ``metrics`` carry ``accuracy`` and ``auc`` per split
            (``accuracy_ci``/``auc_ci`` optional) and whose ``training`` may carry
            ``command``, ``reproduce``, ``batchnorm_statistics``, ``duplicates``
            and ``footprint``.

    Returns:
        Markdown text starting with the accuracy-interval heading, without a
        final newline.
    """
    training = card.training
    lines = [f"## Accuracy with 95 % bootstrap intervals (computed by {BUILT_BY})"]
    for split, m in card.metrics.items():
        lines.append(
            f"- **{split}**: accuracy {m['accuracy']:.3f} [{_ci(m.get('accuracy_ci'))}], "
            f"AUC {m['auc']:.3f} [{_ci(m.get('auc_ci'))}]"
        )
    lines += ["", "## Reproduce", f"- `{training.get('command', '')}`"]
    if training.get("reproduce"):
        lines.append(f"- {training['reproduce']}")
    if training.get("batchnorm_statistics"):
        lines.append(f"- BatchNorm statistics: {training['batchnorm_statistics']}")
    if training.get("duplicates"):
        dup = training["duplicates"]
        lines.append(
            f"- exact duplicates (file digest): {dup['duplicate_groups']} groups, "
            f"{dup['groups_crossing_splits']} crossing splits"
        )
    footprint = training.get("footprint")
    if footprint:
        lines += [
            "",
            "## Footprint",
            f"- model.keras: {footprint['model_bytes'] / 1e6:.2f} MB",
            f"- CPU latency, one image: {footprint['cpu_latency_ms_one_image']:.1f} ms "
            f"(median of 20, {training.get('machine')}, shared with other work)",
        ]
    return "\n".join(lines)


def render_model_readme(card: ModelCard) -> str:
    """The README of ``card``'s model folder.

    Cards written by ``tools.make_models`` (:func:`is_built_card`) get the
    library's card Markdown followed by :func:`built_sections`; other cards get
    :func:`medviz.store.render_card_markdown` alone, as
    :func:`medviz.store.save_bundle` writes it.
    """
    if not is_built_card(card):
        return render_card_markdown(card)
    return render_card_markdown(card) + "\n" + built_sections(card) + "\n"
