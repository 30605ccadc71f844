"""Models: the model library — shipped, trained this session, uploaded, from the Hub."""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import streamlit as st

from medviz.errors import ModelError
from medviz.store import render_card_markdown
from medviz.ui import cache, components, settings, share, state
from medviz.ui import transfer as transfer_ui
from medviz.ui.state import ModelEntry

components.page_header(
    "models",
    "Every model carries its card: classes, input, training data, held-out metrics, "
    "calibration, operating threshold and limitations. Activate one to use it everywhere.",
)

demo = state.demo_mode()
app = state.get()


def card_markdown(card) -> str:
    """The card's README without its YAML front matter (that is for the Hub)."""
    text = render_card_markdown(card)
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4 :]
    return text.strip()


def headline(card) -> str:
    metrics = card.metrics.get("test") or card.metrics.get("val") or {}
    parts = [f"{card.arch}", f"{card.image_size}×{card.image_size}", card.modality]
    if metrics.get("auc") is not None:
        split = "test" if "test" in card.metrics else "val"
        parts.append(f"AUC {metrics['auc']:.3f} ({split})")
    return " · ".join(parts)


def activate(entry: ModelEntry) -> None:
    state.add_model(entry)
    st.toast(f"{entry.title} is now the active model.", icon=":material/check_circle:")


active = state.active_model()
if active is not None:
    with st.container(border=True):
        cols = st.columns([3, 1])
        cols[0].markdown(f"**Active model:** {active.title}")
        cols[0].caption(f"{active.summary} · {state.ORIGIN_LABELS[active.origin]}")
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", active.card.name).strip("-") or "model"
        cols[1].download_button(
            "Download model + card",
            data=functools.partial(cache.model_zip, active),  # packed when clicked
            file_name=f"{name}.zip",
            mime="application/zip",
            icon=":material/download:",
            type="primary",
            help="A zip of model.keras, card.json and README.md (the model card).",
            key="models_download",
        )
    if not demo:
        with st.expander(
            "Export (SavedModel, LiteRT, ONNX) · push to the Hugging Face Hub",
            icon=":material/ios_share:",
        ):
            share.export_downloads(active)
            st.markdown("**Push to the Hugging Face Hub**")
            share.push_form(active)

sections = ["Shipped", "This session"]
if not demo:
    sections += ["Upload .keras", "Hugging Face Hub"]
tabs = st.tabs(sections)

# --- shipped -------------------------------------------------------------------------------------
with tabs[0]:
    shipped = cache.shipped_models()
    if not shipped:
        st.info("No models are shipped in this installation yet.")
    for model in shipped:
        with st.container(border=True):
            cols = st.columns([4, 1])
            if model.card is None:
                cols[0].markdown(f"**{model.name}**")
                cols[0].caption(f"Unusable: {model.problem}")
                continue
            cols[0].markdown(f"**{model.card.title or model.name}**")
            cols[0].caption(headline(model.card))
            is_active = active is not None and active.key == model.key
            if cols[1].button(
                "Active" if is_active else "Activate",
                disabled=is_active,
                icon=":material/check:" if is_active else ":material/bolt:",
                key=f"models_activate_{model.name}",
            ):
                with components.user_errors():
                    activate(cache.shipped_entry(model))
                    st.rerun()
            with st.expander("Model card"):
                st.markdown(card_markdown(model.card))

# --- this session --------------------------------------------------------------------------------
with tabs[1]:
    mine = [e for e in app.models.values() if e.origin != "shipped"]
    if not mine:
        st.info(
            "Models you train (Train page)"
            + ("" if demo else ", upload or fetch from the Hub")
            + " appear here. They live only in this browser session: download the ones to keep.",
            icon=":material/info:",
        )
    for entry in mine:
        with st.container(border=True):
            cols = st.columns([4, 1, 1])
            cols[0].markdown(f"**{entry.title}**")
            cols[0].caption(f"{headline(entry.card)} · {state.ORIGIN_LABELS[entry.origin]}")
            is_active = active is not None and active.key == entry.key
            if cols[1].button(
                "Active" if is_active else "Activate",
                disabled=is_active,
                key=f"models_use_{entry.key}",
            ):
                state.set_active_model(entry.key)
                st.rerun()
            if cols[2].button("Remove", icon=":material/delete:", key=f"models_rm_{entry.key}"):
                state.remove_model(entry.key)
                st.rerun()
            with st.expander("Model card"):
                st.markdown(card_markdown(entry.card))

# --- upload --------------------------------------------------------------------------------------
if not demo:
    with tabs[2]:
        max_mb = settings.max_upload_mb()
        st.markdown(
            "Upload a Keras 3 `.keras` file (optionally with its `card.json`). It is loaded in "
            "**safe mode**: models with Lambda layers or custom code are refused, because "
            "loading them could run arbitrary code on this server."
        )
        keras_file = st.file_uploader(
            "Model (.keras)", type=["keras"], max_upload_size=max_mb, key="models_upload"
        )
        card_file = st.file_uploader(
            "Model card (card.json, optional)", type=["json"], key="models_upload_card"
        )
        if (
            st.button(
                "Load model",
                type="primary",
                icon=":material/upload:",
                key="models_upload_load",
                disabled=keras_file is None,
            )
            and keras_file is not None
        ):
            with components.user_errors(), st.spinner("Loading safely…"):
                if keras_file.size > max_mb * 1024 * 1024:
                    raise ModelError(f"{keras_file.name} is larger than {max_mb} MB")
                from medviz.store import load_bundle

                stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(keras_file.name).stem) or "uploaded"
                with tempfile.TemporaryDirectory(prefix="medviz-upload-") as tmp:
                    folder = Path(tmp) / stem
                    folder.mkdir()
                    (folder / "model.keras").write_bytes(keras_file.getvalue())
                    if card_file is not None:
                        (folder / "card.json").write_bytes(card_file.getvalue())
                    loaded = load_bundle(folder, safe_mode=True)
                loaded.path = None
                entry = ModelEntry(
                    key=state.new_key("uploaded"),
                    title=loaded.card.title or stem,
                    origin="uploaded",
                    card=loaded.card,
                    bundle=loaded,
                )
                activate(entry)
                st.success(f"Loaded **{entry.title}** ({entry.summary}); it is now active.")
                if card_file is None:
                    st.warning(
                        "No card.json: class names and preprocessing are guesses "
                        "(class 0, class 1 …) and there is no out-of-distribution check.",
                        icon=":material/warning:",
                    )
        st.divider()
        transfer_ui.weights_upload_section(max_mb=max_mb)

# --- Hugging Face Hub ----------------------------------------------------------------------------
if not demo:
    with tabs[3]:
        st.markdown(
            "Load a MedViz model from the Hugging Face Hub by its repo id. Only the `.keras` "
            "file, the card and the README are fetched; nothing from the repo is executed."
        )
        cols = st.columns([3, 2])
        repo = cols[0].text_input(
            "Repo id", placeholder="user/medviz-pneumonia", key="models_hub_repo"
        )
        revision = cols[1].text_input(
            "Revision (optional)",
            placeholder="main",
            help="A branch, tag or commit id: pin the exact model version you checked.",
            key="models_hub_revision",
        )
        if st.button("Fetch from the Hub", icon=":material/cloud_download:", key="models_hub_go"):
            with components.user_errors(), st.spinner(f"Fetching {repo}…"):
                from medviz.store import load_bundle, parse_hub_source

                pinned = (revision or "").strip()
                source = f"hf://{(repo or '').strip()}" + (f"@{pinned}" if pinned else "")
                repo_id, rev = parse_hub_source(source)
                loaded = load_bundle(source, safe_mode=True)
                entry = ModelEntry(
                    key=f"hub:{repo_id}" + (f"@{rev}" if rev else ""),
                    title=(loaded.card.title or repo_id) + (f" @ {rev}" if rev else ""),
                    origin="hub",
                    card=loaded.card,
                    path=str(loaded.path) if loaded.path else None,
                    bundle=None if loaded.path else loaded,
                )
                activate(entry)
                st.success(f"Loaded **{entry.title}** from the Hub; it is now active.")
