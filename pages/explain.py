"""Explain: heatmap methods side by side, feature maps, filters, synthesis and trust checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from medviz.data.boxes import restrict_to_heldout
from medviz.errors import MedvizError
from medviz.explain import (
    COLORMAPS,
    METHODS,
    activation_maximization,
    conv_layers,
    deep_dream,
    default_cam_layer,
    feature_grid,
    kernel_grid,
    localization_score,
    overlay,
    sanity_check,
)
from medviz.explain.activation_max import default_steps
from medviz.explain.checks import family_agreement, trust_summary
from medviz.explain.layers import default_feature_layer
from medviz.explain.mirror import mirror_default
from medviz.explain.trust import with_model_classes
from medviz.inference import calibrated_probabilities
from medviz.plots import probability_figure
from medviz.services.predict import predict_image
from medviz.services.uploads import decode_upload
from medviz.ui import cache, components, settings, state
from medviz.ui import explore as explore_ui

components.page_header(
    "explain",
    "What did the network look at, and what has it learned? Compare heatmap methods on one "
    "image, open up its layers, synthesise what it responds to, and check the explanations.",
)

entry, bundle, explainer = components.load_active_model("Explain opens up the active model.")
card = entry.card
model = bundle.model
token = cache.model_token(entry)
names = list(card.class_names)

# --- the image -----------------------------------------------------------------------------------
examples = cache.examples_for(card)
SOURCES = {"examples": "Embedded example", "upload": "Upload an image"}
if not examples:
    SOURCES.pop("examples")
handoff = explore_ui.handoff_for(token)  # an image the Explore page sent here
if handoff is not None:
    SOURCES = {"explore": "From Explore", **SOURCES}
    if state.context_changed("explain_handoff_seen", f"{token}|{handoff.name}"):
        st.session_state["explain_source"] = "explore"
pick_col, class_col, layer_col = st.columns([2, 1, 1])
with pick_col:
    source = st.segmented_control(
        "Image",
        list(SOURCES),
        format_func=SOURCES.get,
        default=next(iter(SOURCES)),
        required=True,
        key="explain_source",
    ) or next(iter(SOURCES))
    raw: tuple[str, bytes] | None = None
    if source == "explore" and handoff is not None:
        st.caption(f"From Explore: {handoff.name}")
        raw = (f"{handoff.name}.png", handoff.png)
    elif source == "examples":
        labels = [e.name for e in examples]
        default = next((e.name for e in examples if e.label == names[-1]), labels[0])
        chosen = st.selectbox("Example", labels, index=labels.index(default), key="explain_example")
        example = examples[labels.index(chosen)]
        raw = (f"{example.name}.png", example.png)
    else:
        upload = st.file_uploader(
            "PNG, JPEG, TIFF or DICOM",
            type=["png", "jpg", "jpeg", "bmp", "tif", "tiff", "pgm", "dcm", "dicom"],
            max_upload_size=settings.max_upload_mb(),
            key="explain_upload",
        )
        if upload is not None:
            raw = (upload.name, upload.getvalue())
with class_col:
    target = st.selectbox(
        "Class to explain",
        [-1, *range(len(names))],
        format_func=lambda k: "the predicted class" if k < 0 else names[k],
        key="explain_class",
    )
layers: list[str] = []
default_layer = ""
with components.user_errors():
    layers = conv_layers(model)
    default_layer = default_cam_layer(model)
if not layers or not default_layer:
    st.stop()
with layer_col:
    layer = st.selectbox(
        "Layer (CAM methods)", layers, index=layers.index(default_layer), key="explain_layer"
    )

if raw is None:
    st.info("Upload an image to explain.", icon=":material/upload_file:")
    st.stop()
image = None
with components.user_errors():
    from medviz.data import to_model_input

    decoded = decode_upload(raw[1], name=raw[0], max_mb=settings.max_upload_mb())
    image = to_model_input(decoded.pixels, image_size=card.image_size, channels=card.channels)
if image is None:
    st.stop()
digest = cache.image_digest(image)
image_context = f"{token}|{digest}"  # results kept for this model and image
# The same calibrated probability and decided class as on Classify (card temperature and
# threshold), so one image never shows two answers.
probabilities, predicted = predict_image(bundle, explainer, image)
class_index = predicted if target < 0 else int(target)

VIEWS = [
    "Heatmaps",
    "Feature maps",
    "First-layer filters",
    "Activation maximisation",
    "Deep dream",
    "Trust checks",
]
view = components.views(VIEWS, key="explain_view")

# --- heatmaps side by side -----------------------------------------------------------------------
if view == VIEWS[0]:
    DEFAULT_METHODS = ["gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad"]
    controls = st.columns([3, 1, 1, 1])
    methods = controls[0].multiselect(
        "Methods",
        list(METHODS),
        default=DEFAULT_METHODS,
        format_func=lambda m: METHODS[m].title,
        key="explain_methods",
    )
    alpha = controls[1].slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="explain_opacity")
    colormap = controls[2].selectbox("Colours", COLORMAPS[:3], key="explain_colormap")
    mirror = controls[3].toggle(
        "Mirror-average",
        value=mirror_default(card.training),
        key=f"explain_mirror_{token}",
        help="Average each map with the flipped-back map of the mirror image. On by default "
        "for models trained with left-right flips, where it removes grid noise (brain MRI: "
        "Grad-CAM inside the tumour 78 % → 81 % of held-out slices).",
    )
    results = []
    with components.user_errors(), st.spinner("Computing heatmaps…"):
        for method in methods:
            results.append(
                cache.explanation(
                    token, digest, method, class_index, layer, explainer, image, mirror=mirror
                )
            )
    if results:
        explained = results[0].class_index
        st.markdown(
            f"Explaining **{names[explained]}** · the model gives it "
            f"{float(probabilities[explained]):.1%} (calibrated) · predicted "
            f"**{names[predicted]}** · CAM layer `{layer}`"
        )
        references: dict[str, np.ndarray] = {}
        with components.user_errors(), st.spinner("Checking the maps…"):
            references = components.family_references(
                token, digest, explainer, image, explained, layer
            )
        loc_report = state.recall("explain_loc", context=token)
        columns = st.columns(len(results) + 1)
        columns[0].image(components.upscale(image, 256), caption="input", width="stretch")
        for column, result in zip(columns[1:], results, strict=True):
            blended = overlay(image, result.heatmap, alpha=alpha, colormap=colormap)
            column.image(
                components.upscale(blended, 256),
                caption=f"{METHODS[result.method].title} · {result.seconds * 1000:.0f} ms",
                width="stretch",
            )
            with column:
                components.trust_verdict(
                    trust_summary(
                        image,
                        result.heatmap,
                        method=result.method,
                        references=references if result.class_index == explained else {},
                        localization=loc_report,
                    )
                )
        components.colour_legend(colormap, label="relevance")
        with st.expander("What the methods do"):
            for method in methods:
                info = METHODS[method]
                st.markdown(f"**{info.title}** ({info.cost}): {info.description}")

# --- feature maps --------------------------------------------------------------------------------
if view == VIEWS[1]:
    fm_cols = st.columns([2, 1, 1])
    # Not the CAM layer: at 128 px its 4×4 maps show blocks; the deepest map of 8×8 or more
    # still shows shapes.
    fm_default = ""
    with components.user_errors():
        fm_default = default_feature_layer(model)
    fm_layer = fm_cols[0].selectbox(
        "Layer",
        layers,
        index=layers.index(fm_default) if fm_default in layers else len(layers) - 1,
        key="explain_fm_layer",
    )
    order = fm_cols[1].selectbox(
        "Order",
        ["strongest", "index"],
        key="explain_fm_order",
        format_func={"strongest": "strongest first", "index": "by index"}.get,
    )
    count = fm_cols[2].slider("Maps", 4, 64, 32, 4, key="explain_fm_count")
    with components.user_errors():
        grid, index = feature_grid(explainer, image, layer=fm_layer, max_maps=count, order=order)
        st.image(components.to_display(components.upscale(grid, 900)), width="stretch")
        st.caption(
            f"{len(index)} feature maps of `{fm_layer}`, each stretched to its own range "
            "(bright = strong activation)."
        )

# --- first-layer filters -------------------------------------------------------------------------
if view == VIEWS[2]:
    with components.user_errors():
        kernels = kernel_grid(explainer)
        st.image(components.to_display(components.upscale(kernels, 420)), width=420)
        st.caption(
            "The kernels of the first convolution, each scaled to its own range (grey = middle "
            "of the range, not necessarily zero). Edge and spot detectors are typical."
        )

# --- activation maximisation ---------------------------------------------------------------------
if view == VIEWS[3]:
    st.markdown(
        "Synthesises the input that most excites a class or one filter, from noise, with "
        "jitter, blur and a frequency prior to keep it readable."
    )
    am_cols = st.columns([1, 1, 1, 1])
    am_target = am_cols[0].radio("Target", ["class", "filter"], horizontal=True, key="am_target")
    if am_target == "class":
        # Default: the class this image is predicted as (again for each new image or model).
        if state.context_changed("explain_am_class", image_context):
            st.session_state["am_class"] = predicted
        am_class = am_cols[1].selectbox(
            "Class",
            range(len(names)),
            format_func=names.__getitem__,
            key="am_class",
            index=None if "am_class" in st.session_state else predicted,
        )
        am_layer, am_filter = None, None
    else:
        am_class = None
        am_layer = am_cols[1].selectbox("Layer", layers, key="am_layer")
        width = int(model.get_layer(am_layer).output.shape[-1])
        am_filter = int(am_cols[2].number_input("Filter", 0, width - 1, 0, key="am_filter"))
    am_steps = int(am_cols[3].number_input("Steps", 1, 1000, default_steps(), key="am_steps"))
    if st.button("Synthesise", icon=":material/auto_fix_high:", key="am_run"):
        bar = st.progress(0.0, text="Optimising…")

        def _am_step(step: int, total: int, loss: float) -> None:
            bar.progress(step / total, text=f"Step {step}/{total} · objective {-loss:.3f}")

        with components.user_errors():
            result = activation_maximization(
                explainer,
                class_index=am_class,
                layer=am_layer,
                filter_index=am_filter,
                steps=am_steps,
                on_step=_am_step,
            )
            state.remember("explain_am", result, context=token)
        bar.empty()
    result = state.recall("explain_am", context=token)
    if result is not None:
        left, right = st.columns([1, 1])
        left.image(
            components.upscale(result.image, 320),
            caption=f"maximises {result.targets[0]} · {result.seconds:.1f} s",
            width="stretch",
        )
        with right:
            am_probs = calibrated_probabilities(result.probabilities[:1], card.temperature)[0]
            figure = probability_figure(am_probs, names)
            figure.update_layout(title_text="Calibrated class probabilities")
            st.plotly_chart(figure, key="am_probs")

# --- deep dream ----------------------------------------------------------------------------------
if view == VIEWS[4]:
    st.markdown(
        "Amplifies what a layer already sees in this image, over several scales: early layers "
        "paint textures, deep layers larger patterns."
    )
    dd_cols = st.columns(4)
    dd_what = dd_cols[0].radio("Amplify", ["layer", "class"], horizontal=True, key="dd_what")
    dd_layer = dd_class = None
    if dd_what == "layer":
        dd_layer = dd_cols[1].selectbox(
            "Layer", layers, index=layers.index(default_layer), key="dd_layer"
        )
    else:
        dd_class = dd_cols[1].selectbox(
            "Class", range(len(names)), format_func=names.__getitem__, key="dd_class"
        )
    octaves = int(dd_cols[2].number_input("Octaves", 1, 5, 3, key="dd_octaves"))
    dd_steps = int(
        dd_cols[3].number_input("Steps per octave", 1, 200, default_steps(20), key="dd_steps")
    )
    if st.button("Dream", icon=":material/bedtime:", key="dd_run"):
        bar = st.progress(0.0, text="Dreaming…")

        def _dd_step(step: int, total: int, loss: float) -> None:
            bar.progress(step / total, text=f"Step {step}/{total}")

        with components.user_errors():
            dream = deep_dream(
                explainer,
                image,
                layer=dd_layer,
                class_index=dd_class,
                octaves=octaves,
                steps_per_octave=dd_steps,
                on_step=_dd_step,
            )
            state.remember("explain_dd", dream, context=image_context)
        bar.empty()
    dream = state.recall("explain_dd", context=image_context)
    if dream is not None:
        frame = st.slider("Frame", 0, len(dream.frames) - 1, len(dream.frames) - 1, key="dd_frame")
        left, right = st.columns(2)
        left.image(components.upscale(image, 320), caption="input", width="stretch")
        right.image(
            components.upscale(dream.frames[frame], 320),
            caption=f"dream of {dream.layer} · frame {frame}/{len(dream.frames) - 1}",
            width="stretch",
        )
        before, after = calibrated_probabilities(np.stack(dream.probabilities), card.temperature)
        st.caption(
            "Calibrated probabilities before → after: "
            + ", ".join(
                f"{n} {b:.0%} → {a:.0%}" for n, b, a in zip(names, before, after, strict=True)
            )
        )

# --- trust checks --------------------------------------------------------------------------------
if view == VIEWS[5]:
    st.markdown(
        "A heatmap is only worth showing if it depends on what the model learned, sits on the "
        "body rather than the background, and agrees across method *families*; on data with "
        "lesion masks or boxes we can also measure whether it points at the lesion better than "
        "pointing at the image centre would."
    )
    choice = components.require_dataset()
    problem = components.localisation_problem(choice, names)
    checks = st.columns(3)
    if checks[0].button("Sanity check", icon=":material/shuffle:", key="trust_sanity"):
        with components.user_errors(), st.spinner("Randomising the top layers…"):
            check = sanity_check(
                explainer, image, method="gradcam", class_index=class_index, layer=layer
            )
            state.remember("explain_sanity", check, context=image_context)
    if checks[1].button("Method agreement", icon=":material/join_inner:", key="trust_agree"):
        with components.user_errors(), st.spinner("Grad-CAM, occlusion, integrated gradients…"):
            agreement = family_agreement(explainer, image, class_index=class_index, layer=layer)
            state.remember("explain_agree", agreement, context=image_context)
    if checks[2].button(
        "Lesion localisation",
        icon=":material/my_location:",
        key="trust_loc",
        disabled=problem is not None,
        help=problem,
    ):
        with components.user_errors(), st.spinner("Scoring heatmaps against lesion masks…"):
            data = cache.dataset(choice, image_size=card.image_size, channels=card.channels)
            if data.masks is None:
                raise MedvizError(
                    f"the active dataset {choice.label!r} has no lesion masks or boxes; "
                    "choose one that has on Data"
                )
            # A box-guided model is scored only on the boxed images it never trained on.
            data, restricted = restrict_to_heldout(data, card.training)
            data = with_model_classes(data, names)
            trained_on = card.facts.dataset
            split = (
                "all"
                if restricted or trained_on != data.name or "test" not in data.available_splits
                else "test"
            )
            report = localization_score(
                explainer,
                data,
                method="gradcam",
                layer=layer,
                split=split,
                max_images=60,
                n_bootstrap=500,
                mirror=mirror_default(card.training),
            )
            state.remember("explain_loc", report, context=token)
    if problem is not None:
        st.info(problem[:1].upper() + problem[1:], icon=":material/info:")
    check = state.recall("explain_sanity", context=image_context)
    if check is not None:
        verdict = "passed" if check.passed else "FAILED"
        st.markdown(
            f"**Sanity check {verdict}:** rank correlation {check.correlation:.2f} between the "
            f"Grad-CAM of the trained model and of a copy with re-initialised "
            f"{', '.join(check.randomized_layers)} (below 0.5 means the map depends on the "
            "learned weights; it says nothing about *where* the map points)."
        )
        pair = st.columns(4)
        pair[0].image(components.upscale(overlay(image, check.original), 200), caption="trained")
        pair[1].image(
            components.upscale(overlay(image, check.randomized), 200), caption="randomised"
        )
    loc_report = state.recall("explain_loc", context=token)
    agreement = state.recall("explain_agree", context=image_context)
    if agreement is not None:
        titles = [METHODS[m].title for m in agreement.methods]
        verdict = "the families agree" if agreement.passed else "the families DISAGREE"
        st.markdown(
            f"**Method agreement across families:** mean correlation "
            f"{agreement.mean:.2f} on a {agreement.grid}×{agreement.grid} grid ({verdict})."
        )
        st.dataframe(
            pd.DataFrame(np.round(agreement.matrix, 2), index=titles, columns=titles),
            key="trust_agree_table",
        )
        maps = dict(zip(agreement.methods, agreement.heatmaps, strict=True))
        components.trust_verdict(
            trust_summary(
                image,
                maps["gradcam"],
                method="gradcam",
                references={m: h for m, h in maps.items() if m != "gradcam"},
                localization=loc_report,
            )
        )
    if loc_report is not None:
        report = loc_report
        cols = st.columns(4)
        cols[0].metric(
            "Pointing game hit rate",
            f"{report.hit_rate:.0%}",
            help=f"95 % CI {report.hit_rate_ci[0]:.0%}–{report.hit_rate_ci[1]:.0%}",
        )
        cols[1].metric("Image centre", f"{report.baselines['centre'].hit_rate:.0%}")
        cols[2].metric("Random point", f"{report.baselines['random'].hit_rate:.0%}")
        cols[3].metric("Images scored", report.n)
        verdict = "better than" if report.passed else "**not better** than"
        st.caption(
            f"Grad-CAM peak within {report.tolerance:.0%} of the side "
            f"({report.tolerance_px:.1f} px) of the lesion, on the {report.split} split "
            f"(95 % CI {report.hit_rate_ci[0]:.0%}–{report.hit_rate_ci[1]:.0%}): "
            f"{verdict} pointing at the image centre or a random point. "
            f"Top-5 % IoU {report.mean_iou:.2f}."
        )
