"""Classify: upload images (PNG, JPEG, DICOM …) and get the answer, the reason and the caveats."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from medviz.errors import MedvizError
from medviz.explain import COLORMAPS, overlay
from medviz.plots import probability_figure
from medviz.services.predict import Classification, classify
from medviz.services.uploads import decode_upload
from medviz.ui import cache, components, dicom_frames, settings, state

components.page_header(
    "classify",
    "Upload one or more images — or pick an embedded example — to see the model's answer, "
    "the evidence it used (Grad-CAM) and whether the image is like its training data.",
)

entry, bundle, explainer = components.load_active_model("Classify needs a model to answer.")
card = entry.card
st.caption(
    f"Model **{entry.title}** · classes {', '.join(card.class_names)} · trained on "
    f"{card.modality} images of {card.image_size}×{card.image_size} px"
)

app = state.get()
examples = cache.examples_for(card)
SOURCES = {"upload": "Upload files", "examples": "Embedded examples"}
if not examples:
    SOURCES.pop("examples")
default_source = "examples" if examples and app.classify_example is not None else "upload"
source = (
    st.segmented_control(
        "Images",
        list(SOURCES),
        format_func=SOURCES.get,
        default=default_source,
        required=True,
        key="classify_source",
    )
    or default_source
)
max_mb = settings.max_upload_mb()

# --- inputs: (name, bytes) -----------------------------------------------------------------------
inputs: list[tuple[str, bytes]] = []
if source == "upload":
    files = st.file_uploader(
        "PNG, JPEG, BMP, TIFF, PGM or DICOM — several at once for a results table",
        type=["png", "jpg", "jpeg", "bmp", "tif", "tiff", "pgm", "gif", "dcm", "dicom"],
        accept_multiple_files=True,
        max_upload_size=max_mb,
        key="classify_files",
    )
    inputs = [(f.name, f.getvalue()) for f in files or []]
    if not inputs:
        st.info(
            "Drop image files above. DICOM files show their modality and windowing; patient "
            "identifiers are never read into MedViz's display.",
            icon=":material/upload_file:",
        )
else:
    names = [e.name for e in examples]
    default = 0
    if app.classify_example == -1:  # the demo: the first example of the last (positive) class
        default = next((i for i, e in enumerate(examples) if e.label == card.class_names[-1]), 0)
    elif app.classify_example is not None:
        default = min(max(app.classify_example, 0), len(examples) - 1)
    picked = st.pills(
        "Held-out examples (not used for training)",
        names,
        default=names[default],
        required=True,
        key="classify_example",
    )
    if picked is not None:
        app.classify_example = names.index(picked)
        example = examples[names.index(picked)]
        inputs = [(f"{example.name}.png", example.png)]


# Multi-frame DICOM files: the user picks the frame the model classifies.
frames = {
    name: dicom_frames.pick_frame(name, data, key_prefix="classify_frame") for name, data in inputs
}


# --- results -------------------------------------------------------------------------------------
def run(name: str, data: bytes, frame: int | None = None) -> Classification:
    """Classify one file (one frame of it), memoised in this session by model and content."""
    memo = app.classifications
    key = f"{cache.model_token(entry)}|{name}|{hashlib.sha1(data).hexdigest()}|{frame}"
    if key not in memo:
        decoded = decode_upload(data, name=name, max_mb=max_mb, frame=frame)
        memo[key] = classify(bundle, explainer, decoded, name=name)
        while len(memo) > 64:
            memo.pop(next(iter(memo)))
    return memo[key]


results: list[Classification] = []
failures: list[tuple[str, str]] = []
for name, data in inputs:
    try:
        results.append(run(name, data, frames.get(name)))
    except (MedvizError, OSError) as err:
        failures.append((name, components.error_message(err)))
for name, message in failures:
    st.error(message if name in message else f"{name}: {message}", icon=":material/error:")
if not results:
    st.stop()

if len(inputs) > 1:
    rows = [r.row() for r in results] + [
        {"file": name, "prediction": "", "error": message} for name, message in failures
    ]
    table = pd.DataFrame(rows)
    done = f"{len(results)} of {len(inputs)}" if failures else f"{len(results)}"
    st.subheader(f"{done} images classified", anchor=False)
    st.dataframe(table, hide_index=True, key="classify_table")
    st.download_button(
        "Download results (CSV)",
        data=table.to_csv(index=False).encode("utf-8"),
        file_name="medviz-predictions.csv",
        mime="text/csv",
        icon=":material/download:",
        key="classify_csv",
    )
    shown_name = st.selectbox(
        "Show one image in detail", [r.name for r in results], key="classify_detail"
    )
    result = next(r for r in results if r.name == shown_name)
else:
    result = results[0]

for warning in result.warnings:
    st.warning(warning, icon=":material/warning:")

st.subheader(f"Prediction: {result.label}", anchor=False)
threshold_note = ""
if card.threshold is not None and len(card.class_names) == 2:
    threshold_note = (
        f" Decided with the model's operating threshold: {card.class_names[1]} when "
        f"P({card.class_names[1]}) ≥ {card.threshold:.2f}."
    )
st.caption(
    f"{result.name} · calibrated probability {result.confidence:.1%}.{threshold_note} "
    f"Prediction, Grad-CAM and out-of-distribution check took {result.seconds * 1000:.0f} ms."
)

seen, heat, probs = st.columns([1, 1, 1.2], gap="medium")
with seen:
    st.markdown("**As the model sees it**")
    st.image(components.upscale(result.model_input, 320), width="stretch")
    st.caption(
        f"{card.image_size}×{card.image_size} {'grey' if card.channels == 1 else 'RGB'}, "
        f"from {result.meta.get('size', '?')} {result.mode}"
    )
with heat:
    st.markdown(f"**Grad-CAM for “{result.label}”**")
    controls = st.columns(2)
    alpha = controls[0].slider("Opacity", 0.0, 1.0, 0.45, 0.05, key="classify_opacity")
    colormap = controls[1].selectbox("Colours", COLORMAPS[:3], key="classify_colormap")
    blended = overlay(result.model_input, result.heatmap, alpha=alpha, colormap=colormap)
    st.image(components.upscale(blended, 320), width="stretch")
    components.colour_legend(colormap, label="evidence", width="stretch")
with probs:
    figure = probability_figure(
        result.probabilities, result.class_names, predicted=result.predicted
    )
    figure.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
        title_text="Calibrated class probabilities",
    )
    st.plotly_chart(figure, key="classify_probs")
    if result.ood_distance is not None:
        if result.ood.method == "detector":
            help_text = (
                "How far the image is past the limit of the model's fitted out-of-distribution "
                "detector (input statistics and features of several layers; see the model "
                "card): above 0 the image is unlike the training data."
            )
        else:
            help_text = (
                "Distance of the image's penultimate-layer features to the training classes; "
                "above the limit (99th percentile of the training images) the image is unlike "
                "the training data."
            )
        st.metric("Out-of-distribution score", f"{result.ood_distance:.2f}", help=help_text)
        if result.is_ood:
            st.badge(
                f"unlike the training data (limit {result.ood_threshold:.2f})",
                icon=":material/report:",
                color="red",
            )
        else:
            st.badge(
                f"like the training data (limit {result.ood_threshold:.2f})",
                icon=":material/task_alt:",
                color="green",
            )
    else:
        st.caption(result.ood.message or "No out-of-distribution check for this model.")

with st.expander("Image details", icon=":material/info:"):
    st.caption(
        "Only display information is read: DICOM patient identifiers (name, ID, dates, "
        "institution …) are never extracted."
    )
    st.dataframe(
        pd.DataFrame([{"field": k, "value": str(v)} for k, v in result.meta.items()]),
        hide_index=True,
        key="classify_meta",
    )
    st.caption(f"Explained layer: {result.layer}")
