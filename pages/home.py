"""Home: what MedViz does, what is active, and the one-click demo."""

from __future__ import annotations

import streamlit as st

from medviz.ui import cache, components, pages, settings, state

st.title(f"{settings.APP_TITLE}", anchor=False)
st.markdown(
    f"#### {settings.TAGLINE}\n"
    "Upload a scan and see what a convolutional network answers — **and why**. Train your own "
    "networks on embedded or local data, evaluate them honestly, and look inside them."
)

demo, glance = st.columns([3, 2], gap="large")
with demo.container(border=True):
    st.markdown("### :material/play_circle: One-click demo")
    st.markdown(
        "Loads the shipped **microcalcification** model and the embedded synthetic mammogram "
        "patches (no files, no network), then opens **Classify** on a held-out example with its "
        "prediction and Grad-CAM heatmap."
    )
    if st.button("Run the demo", type="primary", icon=":material/rocket_launch:", key="run_demo"):
        with components.user_errors():
            components.start_demo()
            st.switch_page(pages.path("classify"))

with glance.container(border=True):
    st.markdown("### :material/dashboard: At a glance")
    entry = state.active_model()
    if entry is None:
        st.markdown("**Model:** none active")
    else:
        st.markdown(f"**Model:** {entry.title}")
        st.caption(entry.summary)
        test = entry.card.metrics.get("test") or entry.card.metrics.get("val") or {}
        if test.get("auc") is not None:
            cols = st.columns(2)
            cols[0].metric("Held-out AUC", f"{test['auc']:.3f}")
            if test.get("accuracy") is not None:
                cols[1].metric("Accuracy", f"{test['accuracy']:.1%}")
    choice = state.active_dataset()
    st.markdown(f"**Dataset:** {choice.label if choice else 'none chosen'}")
    shipped = [m for m in cache.shipped_models() if m.card is not None]
    trained = [m for m in state.get().models.values() if m.origin == "trained"]
    st.caption(
        f"{len(shipped)} shipped model{'s' if len(shipped) != 1 else ''} · "
        f"{len(trained)} trained in this session"
    )

st.subheader("What you can do", anchor=False)
uses = st.columns(3, gap="medium")
CARDS = (
    (
        "Classify an image",
        "Upload PNG, JPEG or DICOM files (or pick an embedded example): class probabilities, "
        "the decision, a Grad-CAM overlay, and a warning when the image looks unlike the "
        "training data.",
        "classify",
        ":material/image_search:",
    ),
    (
        "Train and evaluate",
        "Check a dataset's health, preview realistic augmentations, train a CNN with live "
        "curves, then measure it: ROC with confidence intervals, calibration, thresholds.",
        "train",
        ":material/model_training:",
    ),
    (
        "See what it learned",
        "Grad-CAM, Score-CAM, saliency and SmoothGrad side by side, feature maps, filters, "
        "activation maximisation, deep dream and sanity checks.",
        "explain",
        ":material/psychology:",
    ),
)
for column, (title, text, page, icon) in zip(uses, CARDS, strict=True):
    with column.container(border=True, height="stretch"):
        st.markdown(f"**{title}**")
        st.caption(text)
        st.page_link(pages.path(page), label=f"Open {page.title()}", icon=icon)

st.caption(
    f":material/medical_information: {settings.DISCLAIMER} MedViz is a research and teaching "
    "tool, not a medical device; its answers must never guide a diagnosis or a treatment."
)
