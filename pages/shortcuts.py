"""Shortcut lab: plant a marker in one class, train with and without it, compare the two models."""

from __future__ import annotations

import streamlit as st

from medviz.explore.markers import MARKER_KINDS, Marker
from medviz.explore.shortcut import CONTROLS, DEFAULT_EPOCHS, lab_config
from medviz.services.shortcut import ShortcutJob
from medviz.ui import components, settings
from medviz.ui import shortcut as lab

components.page_header(
    "shortcuts",
    "Did the network learn the disease or a shortcut? Stamp a hospital-style marker into one "
    "class's training images, train a model with it and a clean one, then move the marker to "
    "the other class and watch the accuracy.",
)
st.info(lab.WHAT_IT_SHOWS, icon=":material/info:")

job = lab.current_job()
running = job is not None and job.running
choices = lab.binary_choices()
labels = {c.key: c.label for c in choices}

with st.container(border=True):
    top = st.columns([2, 1, 1])
    key = top[0].selectbox(
        "Binary dataset",
        list(labels),
        format_func=labels.get,
        key="shortcut_data",
        help="Registry datasets with two classes that are present here, and your own dataset "
        "from the Data page.",
    )
    choice = next(c for c in choices if c.key == key)
    names = lab.class_names_of(choice)
    if names is None:
        with components.user_errors():
            names = lab.load(choice).class_names
    if names is None:
        st.stop()
    marked_name = top[1].selectbox(
        "Class that gets the marker",
        list(names),
        index=len(names) - 1,
        key=f"shortcut_class_{key}",
    )
    kind = top[2].selectbox(
        "Marker",
        MARKER_KINDS,
        format_func={
            "tag": "corner tag (letter)",
            "border": "border",
            "brightness": "brightness offset",
        }.get,
        key="shortcut_marker",
    )
    row = st.columns([2, 1, 1])
    percent = row[0].slider(
        "Share of that class's training images with the marker",
        0,
        100,
        100,
        step=5,
        format="%d %%",
        key="shortcut_fraction",
        help="Train and validation images; test images are scored clean, aligned and swapped.",
    )
    cap = settings.max_epochs()
    epochs = int(
        row[1].number_input(
            "Epochs per model", 1, min(cap, 30), min(DEFAULT_EPOCHS, cap), key="shortcut_epochs"
        )
    )
    control = row[2].selectbox(
        "Control model",
        CONTROLS,
        format_func={
            "random": "marker on a random half",
            "none": "never sees the marker",
        }.get,
        key="shortcut_control",
        help="The model to compare with. 'Random half': the same marker on half of all images, "
        "whatever their class, so it is familiar but says nothing. 'Never': trained on the "
        "data as it is.",
    )
    size = int(choice.image_size or lab.MAX_IMAGE_SIZE)
    st.caption(f"fast-cnn at {size}×{size} px, cosine learning rate, no augmentation.")
    n_train = lab.train_count(choice)
    timing = (
        f"Expected time: **{lab.expected_time(n_train, image_size=size, epochs=epochs)}** on a "
        f"quiet 2-core CPU (two models × {epochs} epochs on {n_train:,} training images)."
        if n_train
        else "Expected time: a minute or two on a 2-core CPU per 1,000 training images at "
        f"{size} px and {epochs} epochs."
    )
    if choice.limit_per_class:
        timing += f" At most {choice.limit_per_class} images per class and split are used."
    st.markdown(timing)
    start = st.button(
        "Run the shortcut lab",
        type="primary",
        icon=":material/science:",
        disabled=running,
        help="One lab run at a time per session." if running else None,
        key="shortcut_start",
    )

marker = Marker(kind)
if start and not running:
    data = None
    with components.user_errors(), st.spinner("Loading images…"):
        data = lab.load(choice)
    if data is not None:
        if data.n_classes != 2:
            st.error(f"{choice.label} has {data.n_classes} classes; the shortcut lab needs two.")
        elif {"train", "val", "test"} - set(data.available_splits):
            st.error(f"{choice.label} needs train, val and test splits for the lab.")
        else:
            config = lab_config(image_size=size, epochs=epochs, jit_compile=settings.jit_default())
            job = lab.start_job(
                ShortcutJob(
                    data=data,
                    marker=marker,
                    marked_class=list(data.class_names).index(marked_name),
                    fraction=percent / 100.0,
                    config=config,
                    control=control,
                    dataset_label=choice.label,
                )
            )
            st.rerun()

if job is None:
    with components.user_errors():
        data = lab.load(choice)
        before, after = lab.preview(data, marker, list(data.class_names).index(marked_name))
        st.markdown(f"**Preview**: a '{marked_name}' training image without and with the marker")
        st.image(
            [components.upscale(before, 160), components.upscale(after, 160)],
            caption=["as it is", marker.describe()],
        )
    st.stop()

lab.show_job(job)
