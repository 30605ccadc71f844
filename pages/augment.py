"""Augment: choose on-the-fly augmentations and see them on real images, with realism notes."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import streamlit as st

from medviz.augment import AUGMENTATIONS, MODALITY_REALISM, AugmentConfig, preview, realism_note
from medviz.data import DATASETS
from medviz.ui import cache, components, state

components.page_header(
    "augment",
    "Augmentations are applied on the fly while training. Each one must keep the image "
    "realistic: an image no scanner could produce teaches the network the wrong thing.",
)

choice = components.require_dataset()
data = None
with components.user_errors(), st.spinner("Loading images…"):
    data = cache.dataset(choice)
if data is None:
    st.stop()

spec = DATASETS.get(choice.registry_name or "")
recommended = spec.augment if spec is not None else AugmentConfig()
# Slider ranges: the library's limits, narrowed to what is sensible on screen.
RANGES: dict[str, tuple[float, float, float]] = {
    "rotation_deg": (0.0, 90.0, 1.0),
    "zoom_max": (1.0, 2.0, 0.05),
    "shift": (0.0, 0.5, 0.01),
    "shear": (0.0, 1.0, 0.05),
    "brightness": (0.0, 1.0, 0.05),
    "contrast": (0.0, 1.0, 0.05),
    "noise_sigma": (0.0, 64.0, 1.0),
    "elastic": (0.0, 1.0, 0.05),
    "gamma": (0.0, 1.0, 0.05),
    "resolution_min": (0.1, 1.0, 0.05),
}
FLAGS = {f.name for f in fields(AugmentConfig) if f.type in ("bool", bool)}


def _load(config: AugmentConfig) -> None:
    for name, value in config.to_dict().items():
        st.session_state[f"aug_{name}"] = value


if "aug_rotation_deg" not in st.session_state:
    _load(state.get().augment or recommended)

modality = spec.modality if spec is not None else None
if modality is not None and modality.casefold() in MODALITY_REALISM:
    st.caption(f"Dataset: **{choice.label}** · realism notes for {modality} images")
else:
    st.caption(
        f"Dataset: **{choice.label}** · general realism notes"
        + (f" (none specific to {modality} yet)" if modality else " (modality not known)")
    )
controls, gallery = st.columns([2, 3], gap="large")
with controls:
    buttons = st.container(horizontal=True)
    buttons.button(
        "Recommended",
        on_click=_load,
        args=(recommended,),
        icon=":material/recommend:",
        help="The augmentation that keeps this dataset realistic (from its registry entry).",
        key="aug_recommended",
    )
    buttons.button(
        "None",
        on_click=_load,
        args=(AugmentConfig.none(),),
        icon=":material/block:",
        key="aug_none",
    )
    if buttons.button("Reshuffle", icon=":material/shuffle:", key="aug_reshuffle"):
        st.session_state["aug_seed"] = st.session_state.get("aug_seed", 0) + 1
    values = {}
    for info in AUGMENTATIONS:
        key = f"aug_{info.field}"
        if info.field in FLAGS:
            values[info.field] = st.toggle(info.title, key=key)
        else:
            low, high, step = RANGES[info.field]
            values[info.field] = st.slider(
                info.title, min_value=low, max_value=high, step=step, key=key
            )
        st.caption(realism_note(info.field, modality))

config = None
with components.user_errors():
    config = AugmentConfig(**values)
if config is None:
    st.stop()
state.get().augment = config

with gallery:
    pool = data.split("train") if "train" in data.available_splits else data
    rng = np.random.default_rng(7)
    picks = []
    for k in range(pool.n_classes):
        members = np.flatnonzero(pool.labels == k)
        if len(members):
            count = 2 if pool.n_classes <= 2 else 1
            picks.extend(int(i) for i in rng.choice(members, min(count, len(members)), False))
    seed = int(st.session_state.get("aug_seed", 0))
    if config.is_identity:
        st.info("No augmentation: the network sees every image exactly as stored.")
    st.markdown("**Original** and **augmented** versions (the same seed gives the same versions)")
    with st.spinner("Augmenting…"):
        for index in picks[:4]:
            image = pool.images[index]
            versions = preview(image, config, n=5, seed=seed)
            # The row is labelled above it: a caption is as narrow as its image (63-75 px
            # here), too narrow for "microcalcification" or even "augmented".
            st.caption(
                f"**{pool.class_names[pool.labels[index]]}**: the original, then "
                f"{len(versions)} augmented versions"
            )
            components.image_grid(
                [image, *versions],
                ["original"] + [str(i + 1) for i in range(len(versions))],
                columns=6,
                size=128,
            )
    st.success(
        "The Train page uses these augmentations."
        if not config.is_identity
        else "The Train page will train without augmentation.",
        icon=":material/model_training:",
    )
