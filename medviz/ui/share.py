"""Models page: export downloads (SavedModel, LiteRT, ONNX) and the Hugging Face Hub push form.

Exports are built when the user asks (in a spinner), checked against the
``.keras`` model, zipped and kept in ``st.cache_data`` per model token and
format, so a second download costs nothing. The push form never asks for a
token: it uses ``huggingface_hub``'s own (``HF_TOKEN`` or the ``hf auth
login`` cache on the server) and says which, masked.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import streamlit as st

from medviz.ui import cache, components
from medviz.ui.state import ModelEntry

FORMAT_LABELS = {
    "savedmodel": "TensorFlow SavedModel",
    "litert": "LiteRT (.tflite)",
    "onnx": "ONNX",
}


def _safe_name(entry: ModelEntry) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", entry.card.name).strip("-.") or "model"


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, arcname=str(Path(folder.name) / path.relative_to(folder)))
    return buffer.getvalue()


@st.cache_data(max_entries=12, show_spinner=False)
def _export_zip(token: str, fmt: str, _entry: ModelEntry) -> tuple[bytes, dict[str, Any]]:
    """``(zip bytes, ExportResult.to_dict() without server paths)`` for one model and format."""
    from medviz.export import export_model

    with tempfile.TemporaryDirectory(prefix="medviz-export-") as tmp:
        out = Path(tmp) / f"{_safe_name(_entry)}-{fmt}"
        result = export_model(cache.bundle(_entry), format=fmt, out=out)
        summary = {k: v for k, v in result.to_dict().items() if k not in ("path", "folder")}
        return _zip(out), summary


def export_downloads(entry: ModelEntry) -> None:
    """One row per format: build (on click) → checked summary → download button."""
    st.markdown(
        "Export for deployment. Each export is re-loaded by its own runtime and must give the "
        "`.keras` model's probabilities on 8 test images; the largest difference is shown. "
        "Inputs are raw pixel values 0–255, `(N, S, S, C)` float32; outputs the uncalibrated "
        "softmax. `card.json` (classes, temperature, threshold) travels in the zip."
    )
    token = cache.model_token(entry)
    built: dict[str, dict[str, Any]] = entry.info.setdefault("exports", {})
    for fmt, label in FORMAT_LABELS.items():
        cols = st.columns([2, 3, 2], vertical_alignment="center")
        cols[0].markdown(f"**{label}**")
        key = f"models_export_{fmt}_{re.sub(r'[^A-Za-z0-9]+', '_', entry.key)}"
        if fmt not in built:
            if cols[2].button("Build", icon=":material/build:", key=f"{key}_build"):
                with components.user_errors(f"{label}: "), st.spinner(f"Exporting {label}…"):
                    _, built[fmt] = _export_zip(token, fmt, entry)
            if fmt not in built:
                cols[1].caption("built and checked when you ask (a few seconds)")
                continue
        summary = built[fmt]
        verdict = "same probabilities" if summary["ok"] else "DIFFERENT probabilities"
        cols[1].caption(
            f"{verdict}: max |Δp| {summary['max_abs_diff']:.1e} on {summary['n_images']} images "
            f"({summary['runtime']}); {summary['size_bytes'] / 1e6:.2f} MB"
        )
        data, _ = _export_zip(token, fmt, entry)  # cached: the bytes built above
        cols[2].download_button(
            "Download",
            data=data,
            file_name=f"{_safe_name(entry)}-{fmt}.zip",
            mime="application/zip",
            icon=":material/download:",
            key=f"{key}_download",
        )


def push_form(entry: ModelEntry) -> None:
    """Push the model folder to the Hub with the server's Hugging Face token."""
    from medviz.store import hub_token

    token = hub_token()
    if token.found:
        st.caption(
            f"Token {token.masked} from the {token.source}; it is never shown or typed here."
        )
    else:
        st.info(f"Pushing needs a Hugging Face token: {token.source}.", icon=":material/key:")
    with st.form("models_push_form", border=False):
        cols = st.columns([3, 2])
        repo = cols[0].text_input(
            "Repo id", placeholder="user/medviz-model", key="models_push_repo"
        )
        branch = cols[1].text_input("Branch (optional)", placeholder="main", key="models_push_rev")
        message = st.text_input(
            "Commit message (optional)",
            placeholder=f"Upload {entry.card.name} with MedViz",
            key="models_push_message",
        )
        private = st.checkbox("Create the repo private", key="models_push_private")
        pushed = st.form_submit_button(
            "Push to the Hub", icon=":material/cloud_upload:", disabled=not token.found
        )
    if not pushed:
        return
    with components.user_errors(), st.spinner(f"Pushing to {repo}…"):
        result = _push(entry, (repo or "").strip(), (branch or "").strip(), message, private)
        st.success(
            f"Pushed {', '.join(result.files)} to [{result.repo_id}]({result.repo_url}) "
            f"({result.revision}); [commit]({result.commit_url}). Load it anywhere with "
            f"`hf://{result.repo_id}`."
        )


def _push(entry: ModelEntry, repo: str, branch: str, message: str, private: bool) -> Any:
    from medviz.store import push_to_hub, save_bundle, validate_repo_id

    validate_repo_id(repo)  # refuse a typo before saving anything
    options = {
        "private": private,
        "revision": branch or None,
        "commit_message": (message or "").strip() or None,
    }
    if entry.path is not None and entry.bundle is None:
        return push_to_hub(entry.path, repo, **options)
    with tempfile.TemporaryDirectory(prefix="medviz-push-") as tmp:
        folder = save_bundle(cache.bundle(entry).model, entry.card, Path(tmp) / _safe_name(entry))
        return push_to_hub(folder, repo, **options)
