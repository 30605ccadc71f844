"""Saved models: a folder with ``model.keras``, ``card.json`` and ``README.md``.

A model folder always carries what is needed to use the model: class names,
input size and channels, preprocessing, operating threshold, calibration
temperature and reference feature statistics (for the out-of-distribution
warning). Saves are atomic (write to a temporary sibling, fsync, rename), so
a crash or a full disk never leaves a half-written model where a good one
was. Untrusted files are loaded with Keras ``safe_mode=True``.

Modules, by concern (each imports only those above it): ``atomic`` (atomic
writes) → ``card`` (:class:`ModelCard`, its README) → ``hub`` (``hf://`` ids)
→ ``bundle`` (save / load a model folder) → ``runs`` (the run store).
"""

from __future__ import annotations

from medviz.store.atomic import atomic_write_json, atomic_write_text, fsync_file
from medviz.store.bundle import (
    ModelBundle,
    load_bundle,
    load_model_file,
    save_bundle,
    validate_against_card,
)
from medviz.store.card import (
    CARD_FILE,
    CHECKPOINT_DIR,
    CHECKPOINT_WEIGHTS,
    MODEL_FILE,
    NOTICE,
    README_FILE,
    STRESS_BEGIN,
    STRESS_END,
    ModelCard,
    default_preprocessing,
    render_card_markdown,
    render_stress_markdown,
    write_card_stress,
)
from medviz.store.hub import (
    HF_PREFIX,
    HubToken,
    PushResult,
    check_card_metadata,
    download_from_hub,
    hub_token,
    parse_hub_source,
    push_to_hub,
    validate_repo_id,
)
from medviz.store.runs import RunRecord, RunStore

__all__ = [
    "CARD_FILE",
    "CHECKPOINT_DIR",
    "CHECKPOINT_WEIGHTS",
    "HF_PREFIX",
    "MODEL_FILE",
    "NOTICE",
    "README_FILE",
    "STRESS_BEGIN",
    "STRESS_END",
    "HubToken",
    "ModelBundle",
    "ModelCard",
    "PushResult",
    "RunRecord",
    "RunStore",
    "atomic_write_json",
    "atomic_write_text",
    "check_card_metadata",
    "default_preprocessing",
    "download_from_hub",
    "fsync_file",
    "hub_token",
    "load_bundle",
    "load_model_file",
    "parse_hub_source",
    "push_to_hub",
    "render_card_markdown",
    "render_stress_markdown",
    "save_bundle",
    "validate_against_card",
    "validate_repo_id",
    "write_card_stress",
]
