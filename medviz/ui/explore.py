"""Streamlit glue of the Explore page: which data, cached maps, the Explain hand-off, TCAV runs.

Caching: an embedding map is ``st.cache_data`` keyed by the model token (its
key plus the folder's modification time, see :func:`medviz.ui.cache.model_token`),
the dataset choice's key, the split, the projection, the point cap and the
seed; per-session models have random keys, so no session sees another's map.
A concept test runs in a :class:`~medviz.services.background.BackgroundCall`
kept in the session's state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from medviz.ui import state
from medviz.ui.state import DatasetChoice

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset
    from medviz.explore import EmbeddingMap
    from medviz.store import ModelCard

HANDOFF = "explain_handoff"
"""Session-state name of the image the Explore page sends to Explain."""


@dataclass(frozen=True)
class Handoff:
    """An image sent from Explore to the Explain page.

    Attributes:
        name: What to call it (dataset, split, index, true class).
        png: The model input as PNG bytes (decoded by Explain like an upload).
    """

    name: str
    png: bytes


def send_to_explain(token: str, name: str, image: np.ndarray) -> None:
    """Keep ``image`` for the Explain page of the model ``token`` (it offers it as a source)."""
    import io

    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr.astype(np.uint8))).save(buffer, format="PNG")
    state.remember(HANDOFF, Handoff(name, buffer.getvalue()), context=token)


def handoff_for(token: str) -> Handoff | None:
    """The image Explore sent for the model ``token``, if any."""
    return state.recall(HANDOFF, context=token)


def dataset_choices(card: ModelCard) -> dict[str, tuple[DatasetChoice, str]]:
    """Datasets a map can be drawn from: the model's own, the session's, the matching others.

    Returns:
        ``{choice key: (choice at the model's input, label)}`` in menu order.
    """
    from medviz.data import DATASETS
    from medviz.metrics import normalize_class_name

    wanted = {normalize_class_name(c) for c in card.class_names}
    out: dict[str, tuple[DatasetChoice, str]] = {}
    trained_on = str(card.training.get("dataset", ""))
    active = state.active_dataset()
    if trained_on in DATASETS and DATASETS[trained_on].is_available():
        own = DatasetChoice("registry", trained_on, trained_on, card.image_size, card.channels)
        if active is not None and active.source == trained_on:  # keep the user's cap and seed
            own = replace(active, image_size=card.image_size, channels=card.channels)
        out[own.key] = (own, f"{trained_on} — its training dataset")
    if active is not None and active.source != trained_on:
        out[active.key] = (active, f"{active.label} — your dataset")
    for name, spec in DATASETS.items():
        if name == trained_on or not spec.is_available() or (active and active.source == name):
            continue
        if {normalize_class_name(c) for c in spec.class_names} != wanted:
            continue
        probe = DatasetChoice("registry", name, name, card.image_size, card.channels)
        out[probe.key] = (probe, f"{name} — same classes")
    return out


@st.cache_data(max_entries=24, show_spinner=False)
def embedding(
    token: str,
    data_key: str,
    split: str,
    method: str,
    limit: int,
    seed: int,
    _bundle: Any,
    _data: Dataset,
) -> EmbeddingMap:
    """The embedding map of one split, cached per model, dataset, split, projection and cap."""
    from medviz.explore import embedding_map

    del token, data_key
    return embedding_map(_bundle, _data, split=split, method=method, limit=limit, seed=seed)


def selected_row(event: Any, name: str, *, context: str) -> int | None:
    """The map row the user clicked, kept across reruns (the chart's selection is not).

    Args:
        event: What ``st.plotly_chart(on_select="rerun")`` returned.
        name: Name of the kept selection.
        context: What the selection belongs to (model, data, split, projection …).
    """
    points = []
    selection = getattr(event, "selection", None) or (event or {}).get("selection", {})
    if selection:
        points = selection.get("points", []) if isinstance(selection, dict) else selection.points
    for point in points:
        custom = point.get("customdata") if isinstance(point, dict) else None
        if custom:
            state.remember(name, int(custom[0]), context=context)
            break
    return state.recall(name, context=context)


def start_tcav(
    *,
    explainer: Any,
    concept_images: np.ndarray,
    random_images: np.ndarray,
    class_images: np.ndarray,
    class_index: int,
    class_name: str,
    concept: str,
    layers: list[str],
    runs: int,
    context: str,
) -> Any:
    """Start a concept test in the background and keep it in the session (``explore_tcav``)."""
    from functools import partial

    from medviz.explore import run_tcav
    from medviz.services.background import BackgroundCall

    work = partial(
        run_tcav,
        explainer,
        concept_images,
        random_images,
        class_images,
        class_index=class_index,
        class_name=class_name,
        concept=concept,
        layers=layers,
        runs=runs,
    )
    call = BackgroundCall(work, title=f"TCAV: {concept} → {class_name}", context=context).start()
    state.remember("explore_tcav", call)
    return call


def tcav_call() -> Any:
    """The session's last concept test (running or done), or ``None``."""
    return state.recall("explore_tcav")


def sample(images: np.ndarray, limit: int, *, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``images``, a seeded sample in their order."""
    if len(images) <= limit:
        return images
    pick = np.random.default_rng(seed).choice(len(images), size=limit, replace=False)
    return images[np.sort(pick)]
