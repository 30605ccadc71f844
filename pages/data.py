"""Data: choose a dataset and check its health before trusting any score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from medviz.data import DATASETS, DEFAULT_DATASET, MEDMNIST
from medviz.data.paths import confine_path
from medviz.errors import DataError
from medviz.plots import class_counts_figure, size_scatter_figure
from medviz.ui import cache, components, settings, state
from medviz.ui.state import DatasetChoice

components.page_header(
    "data",
    "Choose the images to train and evaluate on, and check their health — imbalance, "
    "duplicates, leakage, shortcuts — before you trust any score.",
)

demo = state.demo_mode()
SOURCES = {
    "embedded": "Embedded synthetic",
    "registry": "Registered dataset",
    "zip": "Upload .zip",
    "npz": "Upload MedMNIST .npz",
    "folder": "Server folder or file",
    "medmnist": "MedMNIST cache",
}
if demo:  # kiosk: no server paths, no downloads
    SOURCES.pop("folder")
    SOURCES.pop("medmnist")

source = st.segmented_control(
    "Source",
    list(SOURCES),
    format_func=SOURCES.get,
    default="embedded",
    required=True,
    key="data_source",
)
source = source or "embedded"
max_mb = settings.max_upload_mb()


def _describe(name: str) -> str:
    spec = DATASETS[name]
    return spec.title if spec.is_available() else f"{spec.title} (not installed)"


with st.container(border=True):
    name = upload = path = None
    default_size, default_channels = 128, 1
    if source == "embedded":
        spec = DATASETS[DEFAULT_DATASET]
        st.markdown(f"**{spec.title}** — {spec.source}. Licence: {spec.licence}.")
        default_size = spec.image_size
    elif source == "registry":
        names = [n for n in DATASETS if n != DEFAULT_DATASET]
        if demo:  # a kiosk lists only what is installed (and never shows where it is)
            names = [n for n in names if DATASETS[n].is_available()]
        name = st.selectbox("Dataset", names, format_func=_describe, key="data_registry_name")
        if name:
            default_size, default_channels = DATASETS[name].image_size, DATASETS[name].channels
    elif source == "zip":
        upload = st.file_uploader(
            "A .zip of class folders (root/<class>/<image> or root/<split>/<class>/<image>)",
            type=["zip"],
            max_upload_size=max_mb,
            key="data_zip",
        )
    elif source == "npz":
        upload = st.file_uploader(
            "A MedMNIST-style .npz ({split}_images, {split}_labels)",
            type=["npz"],
            max_upload_size=max_mb,
            key="data_npz",
        )
        default_size = 0
    elif source == "folder":
        path = st.text_input(
            "Path on the server",
            placeholder="/data/chest_xray or /data/images.zip or /data/pathmnist.npz",
            key="data_path",
        )
    else:
        name = st.selectbox(
            "MedMNIST dataset",
            sorted(MEDMNIST),
            format_func=lambda n: MEDMNIST[n].title,
            key="data_medmnist",
        )
        st.caption("Read from the local download cache; downloaded once when online.")
        default_size = 0
    cols = st.columns(4)
    size = cols[0].number_input(
        "Image size (px)",
        min_value=0,
        max_value=512,
        value=default_size,
        step=8,
        help="Images are resized to a square of this side. 0 keeps the native size (.npz).",
        key=f"data_size_{source}_{name}",
    )
    channels = cols[1].selectbox(
        "Colour",
        [1, 3],
        index=[1, 3].index(default_channels),
        format_func=lambda c: "grey (1 channel)" if c == 1 else "RGB (3 channels)",
        key=f"data_channels_{source}_{name}",
    )
    limit = cols[2].number_input(
        "Images per class and split",
        min_value=0,
        max_value=100_000,
        value=0,
        step=10,
        help="0 = all. A small number gives a quick look and fast trainings.",
        key=f"data_limit_{source}",
    )
    seed = cols[3].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, key="data_seed")
    group_pattern = ""
    if source in ("zip", "npz", "folder"):
        group_pattern = st.text_input(
            "Patient id in file names (regular expression, optional)",
            placeholder=r"(person\d+)_  — first group = patient id",
            help="Images whose names give the same id (the first group of the expression, "
            "searched in each file's path) stay in one split, so a patient's X-rays never sit "
            "in both train and test. Near-copies of an image are always kept together.",
            key=f"data_group_pattern_{source}",
        ).strip()
    submitted = st.button(
        "Load dataset", type="primary", icon=":material/download:", key="data_load"
    )

if submitted:
    choice: DatasetChoice | None = None
    common = {
        "image_size": int(size) or None,
        "channels": int(channels),
        "limit_per_class": int(limit) or None,
        "seed": int(seed),
        "group_pattern": group_pattern or None,
    }
    with components.user_errors():
        if source == "embedded":
            choice = DatasetChoice("registry", DEFAULT_DATASET, DEFAULT_DATASET, **common)
        elif source == "registry" and name:
            choice = DatasetChoice("registry", name, name, **common)
        elif source in ("zip", "npz"):
            if upload is None:
                st.warning("Choose a file to upload first.", icon=":material/upload_file:")
            elif upload.size > max_mb * 1024 * 1024:
                st.error(f"{upload.name} is larger than {max_mb} MB; upload a smaller file.")
            else:
                digest = state.store_upload(upload.getvalue())
                choice = DatasetChoice("upload", upload.name, upload.name, digest=digest, **common)
        elif source == "folder":
            if not path or not path.strip():
                st.warning("Type the path of a folder, .zip or .npz file on the server.")
            else:
                text = path.strip()
                resolved = confine_path(text)  # no '..', no symlink out of the data folders
                if not resolved.exists():
                    raise DataError(
                        f"{state.path_label(text)}: no such folder or file on the server"
                    )
                choice = DatasetChoice("folder", str(resolved), state.path_label(text), **common)
        elif source == "medmnist" and name:
            choice = DatasetChoice("medmnist", f"medmnist:{name}", f"MedMNIST {name}", **common)
        if choice is not None and choice.group_pattern:
            from medviz.data.groups import compile_pattern

            compile_pattern(choice.group_pattern)  # a typo fails here, before any image is read
        if choice is not None:
            with st.spinner("Loading images…"):
                data = cache.dataset(choice)
            state.set_dataset(choice)
            st.success(
                f"Loaded **{choice.label}**: {len(data):,} images in {data.n_classes} classes.",
                icon=":material/check_circle:",
            )

choice = state.active_dataset()
if choice is None:
    st.info(
        "No dataset chosen yet. The embedded synthetic mammogram patches need no files: "
        "press **Load dataset** above to start with them.",
        icon=":material/info:",
    )
    st.stop()

data = None
with components.user_errors(), st.spinner("Loading images…"):
    data = cache.dataset(choice)
if data is None:
    st.stop()

st.header(f"{choice.label}", anchor=False, divider="gray")
spec = DATASETS.get(choice.registry_name or "")
if data.description or spec is not None:
    st.caption(spec.title if spec is not None else data.description)
m = st.columns(5)
m[0].metric("Images", f"{len(data):,}")
m[1].metric("Classes", data.n_classes)
m[2].metric("Image shape", "×".join(str(v) for v in data.image_shape))
m[3].metric("Splits", len(data.available_splits), help=", ".join(data.available_splits))
m[4].metric("Lesion masks", "yes" if data.masks is not None else "no")
st.caption(f"Licence: {data.licence}" + (f" · Source: {spec.source}" if spec else ""))
if spec is not None and spec.notes:
    st.info(spec.notes, icon=":material/lightbulb:")

report = cache.health(choice.key, data)
st.subheader("Health report", anchor=False)
if report.warnings:
    for warning in report.warnings:
        st.warning(warning, icon=":material/warning:")
else:
    st.success(
        "No imbalance, duplicates, leakage or size/mode shortcut found.",
        icon=":material/verified:",
    )

VIEWS = [
    "Counts",
    "Sizes and modes",
    "Duplicates and leakage",
    "Patients and near-copies",
    "Shortcut check",
]
view = components.views(VIEWS, key="data_view")
if view == VIEWS[0]:
    st.plotly_chart(class_counts_figure(report.counts), key="data_counts")
    table = pd.DataFrame(report.counts).fillna(0).astype(int)
    table["total"] = table.sum(axis=1)
    st.dataframe(table, key="data_counts_table")
if view == VIEWS[1]:
    if data.provenance is None:
        st.caption("Generated images: every image has the same size and mode.")
    else:
        sizes = data.provenance.original_sizes
        if len(sizes) > 5000:  # a scatter of a few thousand points is plenty
            keep = np.random.default_rng(0).choice(len(sizes), 5000, replace=False)
            figure = size_scatter_figure(sizes[keep], data.labels[keep], data.class_names)
        else:
            figure = size_scatter_figure(sizes, data.labels, data.class_names)
        st.plotly_chart(figure, key="data_sizes")
        left, right = st.columns(2)
        left.markdown("**Most common original sizes**")
        left.dataframe(
            pd.DataFrame(
                [
                    {"width × height": f"{w}×{h}", "images": n}
                    for (w, h), n in report.size_distribution[:10]
                ]
            ),
            hide_index=True,
        )
        right.markdown("**Stored modes**")
        right.dataframe(
            pd.DataFrame([{"mode": k, "images": v} for k, v in report.mode_distribution.items()]),
            hide_index=True,
        )
if view == VIEWS[2]:
    st.markdown(
        f"**{len(report.duplicate_groups)}** groups of byte-identical files, "
        f"**{len(report.leakage_groups)}** of them across splits (leakage), "
        f"**{len(report.cross_class_duplicates)}** with conflicting labels."
    )
    if report.leakage_groups:
        st.dataframe(
            pd.DataFrame(
                [
                    {"files": " = ".join(g.sources[:3]), "splits": ", ".join(g.splits)}
                    for g in report.leakage_groups[:200]
                ]
            ),
            hide_index=True,
        )
    elif report.duplicate_groups:
        st.dataframe(
            pd.DataFrame([{"files": " = ".join(g[:4])} for g in report.duplicate_groups[:200]]),
            hide_index=True,
        )
if view == VIEWS[3]:
    if report.groups is None:
        st.caption("No split groups: generated images are all distinct.")
    else:
        g = report.groups
        cols = st.columns(4)
        cols[0].metric("Groups", f"{g['n_groups']:,}", help="Images kept together in one split")
        cols[1].metric("Patients from file names", f"{g['n_patient']:,}")
        cols[2].metric("Groups of several images", f"{g['n_multi']:,}")
        cols[3].metric("Groups crossing splits", len(report.group_crossings))
        st.caption(
            f"{g['n_in_multi']:,} images share a group with another (largest {g['largest']}). "
            "A group is one patient (read from the file names) joined with near-copies of its "
            "images (resized, re-encoded or lightly cropped). Splits MedViz assigns never cut a "
            "group; splits a source gives can."
        )
        if report.group_crossings:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "group": c.key,
                            "found by": c.how,
                            "images": len(c.sources),
                            "splits": ", ".join(c.splits),
                            "files": ", ".join(c.sources[:4]),
                        }
                        for c in report.group_crossings[:200]
                    ]
                ),
                hide_index=True,
                key="data_group_crossings",
            )
        pairs = report.near_duplicates or []
        if pairs:
            exact = sum(p.exact for p in pairs)
            st.markdown(
                f"**{len(pairs):,} pair{'s' if len(pairs) != 1 else ''} of copies** "
                f"({exact:,} byte-identical, "
                f"{len(pairs) - exact:,} resized, re-encoded or cropped; found by perceptual "
                f"hashes, confirmed by correlation), the first {min(6, len(pairs))} side by side:"
            )
            shown = pairs[:6]
            components.image_grid(
                [data.images[i] for p in shown for i in (p.index_a, p.index_b)],
                [f"{s} · {sp} · {c}" for p in shown for s, sp, c in (
                    (p.source_a, p.split_a, p.class_a), (p.source_b, p.split_b, p.class_b)
                )],
                columns=4,
                size=128,
            )  # fmt: skip
if view == VIEWS[4]:
    if report.shortcut is None:
        st.caption("Not applicable: the images have no file provenance (generated data).")
    else:
        cols = st.columns(3)
        cols[0].metric("Balanced accuracy from size + mode", f"{report.shortcut.score:.2f}")
        cols[1].metric("Chance", f"{report.shortcut.chance:.2f}")
        cols[2].metric("Folds", report.shortcut.folds)
        st.caption(
            "A depth-4 decision tree predicts the class from the original width, height, "
            "aspect ratio and mode. Far above chance means a CNN can learn the scanner or the "
            "source instead of the pathology."
        )

st.subheader("Samples per class", anchor=False)
pool = data.split("train") if "train" in data.available_splits else data
if st.button("Show other samples", icon=":material/shuffle:", key="data_reshuffle"):
    st.session_state["data_sample_seed"] = st.session_state.get("data_sample_seed", 0) + 1
rng = np.random.default_rng(st.session_state.get("data_sample_seed", 0))
for k, class_name in enumerate(pool.class_names):
    members = np.flatnonzero(pool.labels == k)
    st.markdown(f"**{class_name}** · {len(members):,} training images")
    if len(members) == 0:
        st.caption("No images of this class in the train split.")
        continue
    picked = rng.choice(members, size=min(8, len(members)), replace=False)
    components.image_grid([pool.images[i] for i in picked], columns=8, size=128)
