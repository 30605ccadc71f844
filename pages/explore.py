"""Explore: how the network sees a whole dataset (embedding map) and what concepts it uses."""

from __future__ import annotations

import numpy as np
import streamlit as st

from medviz.explain import default_cam_layer, overlay
from medviz.explore import (
    COLOUR_BY,
    MAP_LIMITS,
    NEIGHBOUR_LIMITS,
    TCAV_LIMITS,
    available_projections,
    default_tcav_layers,
    image_features,
    nearest_neighbours,
)
from medviz.explore.plots import embedding_figure, neighbour_strip_figure, tcav_figure
from medviz.services.uploads import decode_upload
from medviz.ui import cache, components, matching, pages, settings
from medviz.ui import explore as ui

components.page_header(
    "explore",
    "Beyond one image: how the network arranges a whole dataset, which images it treats alike, "
    "and whether a class responds to a concept you define by examples.",
)

entry, bundle, explainer = components.load_active_model("Explore opens up the active model.")
card = entry.card
token = cache.model_token(entry)
names = list(card.class_names)

VIEWS = ["Embedding map", "Concepts (TCAV)"]
view = components.views(VIEWS, key="explore_view")

# --- which data (both views) -------------------------------------------------------------------
choices = ui.dataset_choices(card)
if not choices:
    st.info(
        "No dataset with this model's classes is available: choose one on the **Data** page.",
        icon=":material/dataset:",
    )
    st.stop()
keys = list(choices)
top = st.columns([3, 1, 1])
picked = top[0].selectbox(
    "Dataset", keys, format_func=lambda k: choices[k][1], key="explore_dataset"
)
choice = choices[picked or keys[0]][0]
problem = None
with components.user_errors():
    problem = matching.check_choice(choice, card, feature="Explore", check_input=False)
if problem is not None:
    st.error(problem, icon=":material/rule:")
    st.stop()
data = None
with components.user_errors(), st.spinner("Loading the images at the model's input size…"):
    data = cache.dataset_for_model(choice, card)
if data is None:
    st.stop()
splits = [*data.available_splits, "all"]
default_split = "val" if "val" in splits else splits[0]
split = top[1].selectbox("Split", splits, index=splits.index(default_split), key="explore_split")
subset = data if split == "all" else data.split(split)

# --- embedding map -------------------------------------------------------------------------------
if view == VIEWS[0]:
    st.caption(f":material/info: {MAP_LIMITS}")
    projections = available_projections()
    controls = st.columns([2, 2, 1])
    method = controls[0].selectbox(
        "Projection",
        list(projections),
        format_func=projections.get,
        key="explore_method",
    )
    colour_by = controls[1].selectbox(
        "Colour by", list(COLOUR_BY), format_func=COLOUR_BY.get, key="explore_colour"
    )
    limit = int(
        top[2].number_input(
            "Most points",
            50,
            10_000,
            2000,
            step=250,
            key="explore_limit",
            help="Larger splits are shown as a stratified random sample (seed 0).",
        )
    )
    emap = None
    with components.user_errors(), st.spinner(f"Features of {len(subset)} images, {method}…"):
        emap = ui.embedding(token, choice.key, split, method, limit, 0, bundle, data)
    if emap is None:
        st.stop()
    if emap.note:
        st.caption(f":material/filter_alt: {emap.note}")
    context = f"{token}|{choice.key}|{split}|{method}|{limit}"
    kept = ui.selected_row(None, "explore_selected", context=context)
    neighbours = None
    if kept is not None and kept < len(emap):
        neighbours = nearest_neighbours(emap, emap.features[kept], k=8, exclude_row=kept)
    figure = embedding_figure(
        emap,
        colour_by=colour_by,
        selected_row=kept,
        neighbour_rows=() if neighbours is None else neighbours.rows,
    )
    event = st.plotly_chart(
        figure,
        on_select="rerun",
        selection_mode="points",
        key=f"explore_map_{context}_{colour_by}_{kept}",
        config={"scrollZoom": True},
    )
    row = ui.selected_row(event, "explore_selected", context=context)
    if row != kept:
        st.rerun()  # draw the ring and neighbours of the new selection
    st.caption(
        f"{len(emap)} images · accuracy {emap.accuracy:.1%} · features of `{emap.layer}` "
        f"({emap.features.shape[1]} values) · {emap.seconds:.1f} s. Click a point to see the "
        "image, its heatmap and its nearest neighbours."
    )

    def show_neighbours(found, title: str) -> None:
        images = [subset.images[int(i)] for i in found.indices]
        captions = [
            f"{names[int(emap.labels[r])]} · {s:.2f}"
            for r, s in zip(found.rows, found.similarity, strict=True)
        ]
        st.plotly_chart(
            neighbour_strip_figure(images, captions, title=title),
            key=f"explore_strip_{title}",
        )
        st.caption(f":material/info: {NEIGHBOUR_LIMITS}")

    if row is not None and row < len(emap):
        index = int(emap.indices[row])
        image = subset.images[index]
        truth, guess = names[int(emap.labels[row])], names[int(emap.predictions[row])]
        st.subheader(f"Image {index} of the {split} split", anchor=False)
        left, middle, right = st.columns([1, 1, 2])
        left.image(components.upscale(image, 224), caption="input", width="stretch")
        heat = None
        layer = ""
        with components.user_errors(), st.spinner("Grad-CAM…"):
            layer = default_cam_layer(bundle.model)
            heat = cache.explanation(
                token, cache.image_digest(image), "gradcam", None, layer, explainer, image
            )
        if heat is not None:
            middle.image(
                components.upscale(overlay(image, heat.heatmap, alpha=0.5), 224),
                caption=f"Grad-CAM of {names[heat.class_index]} · `{layer}`",
                width="stretch",
            )
        with right:
            verdict = "correct" if emap.correct[row] else "**wrong**"
            st.markdown(
                f"True class **{truth}** · predicted **{guess}** "
                f"({float(emap.confidence[row]):.1%}, calibrated) · {verdict}"
            )
            if st.button(
                "Open in Explain",
                icon=":material/psychology:",
                key="explore_to_explain",
                help="All heatmap methods, feature maps and trust checks for this image.",
            ):
                ui.send_to_explain(token, f"{data.name} {split} #{index} ({truth})", image)
                st.switch_page(pages.path("explain"))
        if neighbours is not None:
            show_neighbours(neighbours, "Nearest neighbours in feature space")

    with st.expander("Neighbours of your own image", icon=":material/upload_file:"):
        upload = st.file_uploader(
            "PNG, JPEG, TIFF or DICOM",
            type=["png", "jpg", "jpeg", "bmp", "tif", "tiff", "pgm", "dcm", "dicom"],
            max_upload_size=settings.max_upload_mb(),
            key="explore_upload",
        )
        if upload is not None:
            with components.user_errors():
                from medviz.data import to_model_input

                decoded = decode_upload(
                    upload.getvalue(), name=upload.name, max_mb=settings.max_upload_mb()
                )
                mine = to_model_input(
                    decoded.pixels, image_size=card.image_size, channels=card.channels
                )
                found = nearest_neighbours(emap, image_features(bundle, mine), k=8)
                cols = st.columns([1, 5])
                cols[0].image(components.upscale(mine, 160), caption=upload.name)
                with cols[1]:
                    show_neighbours(found, "Nearest neighbours of your image")

# --- concepts (TCAV) -----------------------------------------------------------------------------
if view == VIEWS[1]:
    st.caption(f":material/info: {TCAV_LIMITS}")
    layers_all: list[str] = []
    default_layers: list[str] = []
    with components.user_errors():
        from medviz.explain import conv_layers

        layers_all = conv_layers(bundle.model)
        default_layers = default_tcav_layers(bundle.model)
    SOURCES = {"class": "Images of a class of the dataset", "upload": "Upload example images"}
    form = st.columns([2, 1, 1])
    source = (
        form[0].segmented_control(
            "Concept examples",
            list(SOURCES),
            format_func=SOURCES.get,
            default="class",
            required=True,
            key="tcav_source",
        )
        or "class"
    )
    concept_images = None
    concept_name = ""
    train = data.split("train") if "train" in data.available_splits else data
    if source == "class":
        concept_class = form[1].selectbox(
            "Concept class", range(len(names)), format_func=names.__getitem__, key="tcav_concept"
        )
        concept_name = names[concept_class]
        concept_images = ui.sample(train.images[train.labels == concept_class], 50, seed=1)
        st.caption(
            f"{len(concept_images)} {concept_name} images of the train split stand for the "
            "concept; the random images are drawn from all classes of the same split."
        )
    else:
        files = st.file_uploader(
            "A few images that show the concept (5–50)",
            type=["png", "jpg", "jpeg", "bmp", "tif", "tiff", "pgm", "dcm", "dicom"],
            accept_multiple_files=True,
            max_upload_size=settings.max_upload_mb(),
            key="tcav_upload",
        )
        concept_name = form[1].text_input("Concept name", "my concept", key="tcav_name")
        if files:
            from medviz.data import to_model_input

            decoded_images = []
            with components.user_errors():
                for f in files:
                    decoded = decode_upload(
                        f.getvalue(), name=f.name, max_mb=settings.max_upload_mb()
                    )
                    decoded_images.append(
                        to_model_input(
                            decoded.pixels, image_size=card.image_size, channels=card.channels
                        )
                    )
            if decoded_images:
                concept_images = np.stack(decoded_images)
    target = form[2].selectbox(
        "Class tested",
        range(len(names)),
        index=len(names) - 1,
        format_func=names.__getitem__,
        key="tcav_class",
    )
    row2 = st.columns([3, 1])
    layers = row2[0].multiselect("Layers", layers_all, default=default_layers, key="tcav_layers")
    runs = int(row2[1].number_input("Random sets", 2, 50, 10, key="tcav_runs"))
    class_images = ui.sample(subset.images[subset.labels == target], 100, seed=2)
    random_images = ui.sample(train.images, 100, seed=3)
    ready = concept_images is not None and len(layers) > 0 and len(class_images) > 0
    call = ui.tcav_call()
    if st.button(
        "Run the concept test",
        type="primary",
        icon=":material/science:",
        key="tcav_run",
        disabled=not ready or (call is not None and call.running),
    ):
        call = ui.start_tcav(
            explainer=explainer,
            concept_images=concept_images,
            random_images=random_images,
            class_images=class_images,
            class_index=int(target),
            class_name=names[target],
            concept=concept_name,
            layers=list(layers),
            runs=runs,
            context=token,
        )
    if not ready and concept_images is None:
        st.info("Give the concept some example images first.", icon=":material/image:")

    @st.fragment(run_every=settings.poll_seconds() if call is not None and call.running else None)
    def tcav_progress() -> None:
        """Progress and Stop while the test runs; the bars when it is done."""
        current = ui.tcav_call()
        if current is None:
            return
        snap = current.snapshot()
        if current.running:
            st.progress(snap.fraction, text=f"{current.title}: {snap.message}")
            st.button("Stop", icon=":material/stop_circle:", on_click=current.stop, key="tcav_stop")
            return
        if snap.error:
            st.error(f"{current.title}: {snap.error}", icon=":material/error:")
            return
        result = snap.result
        if result is None:
            return
        st.plotly_chart(tcav_figure(result), key=f"tcav_bars_{current.id}")
        corrected = result.alpha / len(result.layers)
        st.caption(
            f"{result.n_concept} concept images, {result.n_class} {result.class_name} images, "
            f"random pool {result.n_random}, {result.runs} random sets per layer, "
            f"{snap.elapsed_s:.1f} s. ★ = p below {corrected:.3g} (α {result.alpha} over "
            f"{len(result.layers)} layers). Mean CAV accuracy: "
            + ", ".join(f"`{r.layer}` {r.cav_accuracy:.0%}" for r in result.layers)
            + " (near 50 %: the layer cannot tell the concept from random images)."
        )

    tcav_progress()
