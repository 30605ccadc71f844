"""A typed view of a model card's ``training`` record.

The card keeps ``training`` as a plain JSON object, so older cards, cards
written by other tools and fields added later all load. Code that *reads* it
goes through :class:`TrainingFacts` instead of ``dict.get`` chains: one place
knows each field's name, type and default, and a typo is an attribute error
instead of a silent ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medviz.data.boxes import HELDOUT_LESIONS_KEY


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class TrainingFacts:
    """What a card says about how its model was trained.

    Attributes:
        dataset: Registry name or description of the training data (``""``: unknown).
        licence: Licence of that data.
        split: How the splits were made, in words.
        counts: Images per split and class, ``{split: {class: n}}``.
        command: The command that trained it.
        config: The :class:`~medviz.training.TrainConfig` as a dict (``{}``: unknown).
        epochs_run: Epochs trained, or ``None``.
        best_epoch: The kept epoch (1-based), or ``None``.
        seconds: Wall time of the training, or ``None``.
        machine: Where it trained.
        date: When (``YYYY-MM-DD``).
        xla: Why XLA was on or off, or ``None``.
        history: Per-epoch metrics, ``{name: [values]}``.
        heldout_lesion_sources: Lesion images (``"<dataset>/<path>"``) held out
            of a box-guided training, for localisation checks.
        record: The whole record as stored, for fields this view does not name.
    """

    dataset: str = ""
    licence: str = "unknown"
    split: str = ""
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    command: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    epochs_run: int | None = None
    best_epoch: int | None = None
    seconds: float | None = None
    machine: str = ""
    date: str = ""
    xla: str | None = None
    history: Mapping[str, Any] = field(default_factory=dict)
    heldout_lesion_sources: tuple[str, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> TrainingFacts:
        """Read a card's ``training`` record; missing or mistyped fields get their defaults.

        Args:
            record: The ``training`` object of a card, or ``None``.
        """
        record = dict(record or {})

        def text(key: str, default: str = "") -> str:
            value = record.get(key)
            return str(value) if value not in (None, "") else default

        def mapping(key: str) -> Mapping[str, Any]:
            value = record.get(key)
            return value if isinstance(value, Mapping) else {}

        listed = record.get(HELDOUT_LESIONS_KEY)
        heldout = tuple(str(s) for s in listed) if isinstance(listed, list) else ()
        return cls(
            dataset=text("dataset"),
            licence=text("licence", "unknown"),
            split=text("split"),
            counts=mapping("counts"),
            command=text("command"),
            config=mapping("config"),
            epochs_run=_int_or_none(record.get("epochs_run")),
            best_epoch=_int_or_none(record.get("best_epoch")),
            seconds=_float_or_none(record.get("seconds")),
            machine=text("machine"),
            date=text("date"),
            xla=record.get("xla") if isinstance(record.get("xla"), str) else None,
            history=mapping("history"),
            heldout_lesion_sources=heldout,
            record=record,
        )

    @property
    def augment(self) -> Mapping[str, Any]:
        """The training augmentation (``config.augment``), ``{}`` when unknown."""
        value = self.config.get("augment")
        return value if isinstance(value, Mapping) else {}

    @property
    def horizontal_flip(self) -> bool:
        """Whether training flipped images left-right (mirror-averaged maps follow it)."""
        return bool(self.augment.get("horizontal_flip", False))

    @property
    def arch_options(self) -> dict[str, Any]:
        """Builder options of the architecture (``config.arch_options``)."""
        value = self.config.get("arch_options")
        return dict(value) if isinstance(value, Mapping) else {}
