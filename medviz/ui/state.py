"""Per-session state: the session's models, the active model and dataset, training jobs.

Everything a user does lives in one :class:`AppState` object stored in
``st.session_state`` — never in a module global or a cache — so two browser
sessions never see each other's uploads, trained models or training runs.
Shared, immutable heavy things (shipped models, registry datasets) live in
:mod:`medviz.ui.cache`; this module only holds references to them.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import streamlit as st

from medviz.ui import settings

if TYPE_CHECKING:  # pragma: no cover
    from medviz.augment import AugmentConfig
    from medviz.services.jobs import TrainingJob
    from medviz.services.predict import Classification
    from medviz.store import ModelBundle, ModelCard

STATE_KEY = "_medviz_state"

Origin = Literal["shipped", "trained", "uploaded", "hub"]
DatasetKind = Literal["registry", "folder", "medmnist", "upload"]

ORIGIN_LABELS: dict[str, str] = {
    "shipped": "shipped with MedViz",
    "trained": "trained in this session",
    "uploaded": "uploaded .keras",
    "hub": "Hugging Face Hub",
}


@dataclass
class ModelEntry:
    """One model the session can use.

    Attributes:
        key: Unique id (``shipped:<name>``, ``trained:<uuid>`` …); cache keys derive from it.
        title: Name shown to people.
        origin: Where it came from.
        card: Its model card (cheap to show: no TensorFlow needed).
        path: Folder on disk for shipped and Hub models (loaded through the shared cache).
        bundle: The loaded model for in-memory models (trained, uploaded): per session.
        info: Extras, e.g. the training job id and its evaluations.
    """

    key: str
    title: str
    origin: Origin
    card: ModelCard
    path: str | None = None
    bundle: ModelBundle | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """One line: architecture, input and classes."""
        card = self.card
        colour = "grey" if card.channels == 1 else "RGB"
        return (
            f"{card.arch} · {card.image_size}×{card.image_size} {colour} · {card.n_classes} classes"
        )


@dataclass(frozen=True)
class DatasetChoice:
    """How to (re)load the dataset a user picked, at any image size.

    Attributes:
        kind: Registry name, server folder/file, MedMNIST download cache, or an upload.
        source: Registry name, path, ``medmnist:<name>`` or the upload's file name.
        label: Name shown to people (never a server path in demo mode).
        image_size: Side length the user chose (``None``: the source's default).
        channels: 1 or 3 (``None``: the source's default).
        limit_per_class: Quick-look cap per class and split (``None``: all).
        seed: Seed of generated data and of splits the source lacks.
        digest: SHA-256 of an uploaded file (its bytes live in :attr:`AppState.uploads`).
        group_pattern: Regular expression reading patient ids from file names, so
            one patient's images share a split (``None``: the registry's, else
            near-duplicate clusters only).
    """

    kind: DatasetKind
    source: str
    label: str
    image_size: int | None = None
    channels: int | None = None
    limit_per_class: int | None = None
    seed: int = 0
    digest: str | None = None
    group_pattern: str | None = None

    @property
    def key(self) -> str:
        """A string identifying the choice (cache keys, widget keys)."""
        origin = self.digest if self.kind == "upload" else self.source
        pattern = f":{self.group_pattern}" if self.group_pattern else ""
        return (
            f"{self.kind}:{origin}:{self.image_size}:{self.channels}:"
            f"{self.limit_per_class}:{self.seed}{pattern}"
        )

    @property
    def registry_name(self) -> str | None:
        """The registry name when the choice is a registry dataset."""
        return self.source if self.kind == "registry" else None


@dataclass(frozen=True)
class Kept:
    """A page's value kept across reruns, with what it belongs to.

    Attributes:
        context: What the value belongs to (model token, image digest, dataset
            key …, joined by ``|``); :func:`recall` returns the value only in
            the same context.
        value: The kept value (a result dataclass, a selection, a figure).
    """

    context: str
    value: Any


@dataclass(frozen=True)
class StressRequest:
    """The Evaluate page's stress test a user asked for (it runs on a click only).

    Attributes:
        model: The model's cache token.
        dataset: The dataset choice's key.
        split: The split stress-tested.
        images: Sample size.
    """

    model: str
    dataset: str
    split: str
    images: int


@dataclass(frozen=True)
class PolicyRequest:
    """A threshold policy chosen on the Evaluate page, and where it was fitted.

    Attributes:
        policy: ``"calibrated"``, ``"youden"`` or ``"sensitivity"``.
        target: Target sensitivity (``None`` for the other policies).
        dataset: The dataset choice's key (its validation split fits the policy).
    """

    policy: str
    target: float | None
    dataset: str


@dataclass
class ThresholdSetting:
    """The Evaluate page's threshold state for one model (kept with :func:`remember`).

    Attributes:
        applied: The policy whose threshold the slider last received
            (``None``: the card's threshold still stands).
        note: How the slider's current threshold was found (shown under it).
    """

    applied: PolicyRequest | None = None
    note: str = ""


@dataclass
class AppState:
    """Everything one browser session owns."""

    models: dict[str, ModelEntry] = field(default_factory=dict)
    active_model: str | None = None
    dataset: DatasetChoice | None = None
    uploads: dict[str, bytes] = field(default_factory=dict)
    jobs: list[TrainingJob] = field(default_factory=list)
    augment: AugmentConfig | None = None
    demo_toggle: bool = False
    classify_example: int | None = None
    selections: dict[str, Kept] = field(default_factory=dict)
    classifications: dict[str, Classification] = field(default_factory=dict)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    created: float = field(default_factory=time.time)


def get() -> AppState:
    """The session's :class:`AppState` (created on first use)."""
    state = st.session_state.get(STATE_KEY)
    if state is None:
        state = AppState()
        st.session_state[STATE_KEY] = state
    return state


def demo_mode() -> bool:
    """Whether demo (kiosk) mode is on: forced by ``MEDVIZ_DEMO`` or toggled in this session."""
    return settings.demo_forced() or get().demo_toggle


# --- selections ----------------------------------------------------------------------------------


def remember(name: str, value: Any, *, context: str = "") -> None:
    """Keep a page's selection (e.g. the clicked confusion-matrix cell) across reruns.

    Widget state is not enough for such selections: a chart's selection is lost
    whenever its figure changes. ``context`` says what the selection belongs to
    (model, dataset, split …); :func:`recall` forgets it when the context changes.
    """
    get().selections[name] = Kept(context, value)


def recall(name: str, *, context: str = "", default: Any = None) -> Any:
    """The selection :func:`remember` kept under ``name`` in the same context, else ``default``."""
    kept = get().selections.get(name)
    if kept is None or kept.context != context:
        return default
    return kept.value


def context_changed(name: str, context: str) -> bool:
    """Whether ``context`` differs from the one seen under ``name`` last time (then keep it).

    For things done once per context, e.g. resetting a widget's default for a
    new image, or one rerun after a training job ended.
    """
    if recall(name, context=context, default=False):
        return False
    remember(name, True, context=context)
    return True


# --- models --------------------------------------------------------------------------------------


def add_model(entry: ModelEntry, *, activate: bool = True) -> ModelEntry:
    """Add (or replace) a model of this session, and make it active by default."""
    state = get()
    state.models[entry.key] = entry
    if activate:
        state.active_model = entry.key
    return entry


def remove_model(key: str) -> None:
    """Forget a model of this session (the active one becomes none)."""
    state = get()
    state.models.pop(key, None)
    if state.active_model == key:
        state.active_model = None


def active_model() -> ModelEntry | None:
    """The active model, or ``None``."""
    state = get()
    if state.active_model is None:
        return None
    return state.models.get(state.active_model)


def set_active_model(key: str) -> None:
    """Make one of the session's models active."""
    state = get()
    if key in state.models:
        state.active_model = key


def new_key(prefix: str) -> str:
    """A fresh unique model key."""
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


# --- dataset -------------------------------------------------------------------------------------


def set_dataset(choice: DatasetChoice) -> None:
    """Make ``choice`` the session's dataset."""
    get().dataset = choice


def active_dataset() -> DatasetChoice | None:
    """The session's dataset choice, or ``None``."""
    return get().dataset


def default_dataset_choice(*, limit_per_class: int | None = None) -> DatasetChoice:
    """The embedded synthetic dataset (no files, no network)."""
    from medviz.data import DATASETS, DEFAULT_DATASET

    spec = DATASETS[DEFAULT_DATASET]
    return DatasetChoice(
        kind="registry",
        source=spec.name,
        label=spec.name,
        image_size=spec.image_size,
        channels=spec.channels,
        limit_per_class=limit_per_class,
    )


def store_upload(data: bytes) -> str:
    """Keep an uploaded dataset file's bytes in the session; return its digest."""
    digest = hashlib.sha256(data).hexdigest()
    get().uploads[digest] = data
    return digest


def upload_bytes(digest: str) -> bytes | None:
    """The bytes of an upload of this session."""
    return get().uploads.get(digest)


def path_label(path: str | Path) -> str:
    """How a server path is shown: its name only in demo mode."""
    return Path(path).name if demo_mode() else str(path)


# An absolute POSIX path (or ~/…) inside a message: keep only its last component.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~/])(?:~/|/)(?:[^\s'\"()\[\]{},;:<>|*?/]+/)*([^\s'\"()\[\]{},;:<>|*?/]*)"
)


def scrub_paths(text: str) -> str:
    """``text`` with every absolute server path shortened to its file name, in demo mode.

    Outside demo mode the text is returned unchanged (paths help people fix things).
    """
    if not demo_mode():
        return text
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "…", text)


# --- training jobs -------------------------------------------------------------------------------


def add_job(job: TrainingJob) -> TrainingJob:
    """Keep a started job in this session (the newest first)."""
    get().jobs.insert(0, job)
    return job


def running_job() -> TrainingJob | None:
    """This session's job that is still training, if any."""
    return next((job for job in get().jobs if job.running), None)


def collect_finished_jobs() -> list[ModelEntry]:
    """Turn this session's finished jobs into models of the session (once per job).

    The kept model is the job's best run (the only one without repeats); it
    becomes the active model. Returns the entries added.
    """
    added = []
    for job in get().jobs:
        if job.collected or job.running:
            continue
        job.collected = True
        best = job.best
        if best is None:
            continue
        suffix = f" (best of {len(job.runs)} runs)" if len(job.runs) > 1 else ""
        entry = ModelEntry(
            key=f"trained:{job.id}",
            title=f"{job.title}{suffix}",
            origin="trained",
            card=best.bundle.card,
            bundle=best.bundle,
            info={
                "job": job.id,
                "evaluations": best.evaluations,
                "history": best.result.history,
                "stopped_by_user": best.result.stopped_by_user,
                "summary": job.summary,
                "summary_split": job.summary_split,
                "runs": len(job.runs),
            },
        )
        added.append(add_model(entry))
    return added
