"""Train-page widgets for transfer learning: the weights status and "Compare transfer modes".

The status is decided by :func:`medviz.weights.resolve_weights` (never
downloading from a page) and shown next to the architecture choice, so a user
sees *before* training whether the backbone starts from ImageNet, a local file,
the MedViz backbone or random weights. The comparison runs
:class:`medviz.services.transfer_job.TransferJob` in a background thread kept in
this session's state and polled by a fragment, with Stop.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from medviz.data.dataset import Dataset
from medviz.errors import MedvizError
from medviz.services.transfer_job import TransferJob
from medviz.training import TrainConfig
from medviz.transfer import comparison_figure, comparison_rows
from medviz.ui import settings, state
from medviz.weights import WeightsStatus, resolve_weights

_JOB_KEY = "_medviz_transfer_job"
SOURCE_LABELS = {
    "imagenet": "ImageNet (Keras cache)",
    "medviz": "MedViz medical backbone (shipped)",
    "none": "none: random initialisation",
}


def weights_choices(arch: str) -> list[str]:
    """The ``pretrained`` values that make sense for transfer architecture ``arch``."""
    return ["medviz", "none"] if arch == "medviz-backbone" else ["imagenet", "none"]


def weights_options(arch: str, *, key: str) -> tuple[str, str, int]:
    """Widgets for a transfer architecture: initial weights, mode, unfreeze depth; shows the status.

    Returns:
        ``(pretrained, mode, fine_tune_from)``.
    """
    cols = st.columns(3)
    choices = weights_choices(arch)
    default = "none" if state.demo_mode() and "imagenet" in choices else choices[0]
    pretrained = cols[0].selectbox(
        "Initial weights",
        choices,
        index=choices.index(default),
        format_func=SOURCE_LABELS.get,
        key=f"{key}_pretrained_{arch}",
        help="Missing pretrained weights stop the training with an error; choose 'none' to "
        "train from random initialisation on purpose. Add ImageNet files on the Models page.",
    )
    mode = cols[1].selectbox(
        "Transfer mode",
        ["fine-tune", "feature-extractor"],
        format_func={"fine-tune": "fine-tune", "feature-extractor": "frozen feature extractor"}.get,
        key=f"{key}_transfer_mode",
    )
    fine_tune_from = int(
        cols[2].number_input(
            "Unfreeze from layer",
            0,
            1000,
            0,
            key=f"{key}_fine_tune_from",
            disabled=mode != "fine-tune",
            help="Fine-tune: backbone layers below this index stay frozen (0 = all train).",
        )
    )
    show_status(arch, pretrained)
    return pretrained, mode, fine_tune_from


def status_of(arch: str, pretrained: str) -> WeightsStatus | str:
    """The status training will report, or why it cannot start (a string)."""
    try:
        return resolve_weights(arch, pretrained, download=False)
    except MedvizError as err:
        return str(err)


def show_status(arch: str, pretrained: str) -> None:
    """One line: which weights the backbone will start from (or why it cannot)."""
    status = status_of(arch, pretrained)
    if isinstance(status, str):
        st.error(f"**Weights:** {state.scrub_paths(status)}", icon=":material/error:")
    elif status.pretrained:
        st.success(f"**Weights:** {state.scrub_paths(status.describe())}", icon=":material/check:")
    else:
        st.warning(f"**Weights:** {status.describe()}", icon=":material/casino:")


def show_trained_status(status: WeightsStatus | None) -> None:
    """After training: what the model's backbone started from."""
    if status is not None:
        st.caption(f"Backbone weights used: {state.scrub_paths(status.describe())}")


def compare_section(config: TrainConfig, data_loader, *, fine_tune_from: int) -> None:
    """The "Compare transfer modes" section: start, live progress, curves and table.

    Args:
        config: The page's current settings (a transfer architecture).
        data_loader: Called with no argument to load the dataset (only on Start).
        fine_tune_from: Unfreeze depth of the fine-tune arm.
    """
    job: TransferJob | None = st.session_state.get(_JOB_KEY)
    st.caption(
        "Trains the architecture three ways with these settings: from scratch (random "
        "weights), frozen pretrained backbone (only the head trains) and fine-tuned backbone; "
        "each is scored on the held-out test split (the best epoch is picked on validation)."
    )
    running = job is not None and job.running
    precise_bn = st.checkbox(
        "Recompute BatchNorm statistics after training (precise BN)",
        value=True,
        key="transfer_compare_precise_bn",
        help="With a few dozen images an epoch is a few batches, so BatchNorm's moving "
        "averages still hold much of their initial values when training ends: the ranking "
        "(AUC) is right but the 0.5 threshold is not (chest vs abdomen, 53 images: accuracy "
        "0.50 from scratch without, 1.00 with; bench/results/transfer.md).",
    )
    if st.button(
        "Compare scratch / frozen / fine-tuned",
        icon=":material/compare_arrows:",
        disabled=running,
        key="transfer_compare_start",
    ):
        with st.spinner("Loading images…"):
            data: Dataset | None = None
            try:
                data = data_loader()
                resolve_weights(config.arch, config.pretrained or True, download=False)
            except MedvizError as err:
                st.error(state.scrub_paths(str(err)))
                data = None
        if data is not None:
            missing = {"train", "val", "test"} - set(data.available_splits)
            if missing:
                st.error(f"the comparison needs train, val and test splits; missing {missing}")
            else:
                job = TransferJob(
                    config=replace(config, precise_bn=precise_bn),
                    data=data,
                    fine_tune_from=fine_tune_from,
                ).start()
                st.session_state[_JOB_KEY] = job
                st.rerun()
    if job is not None:
        _live(job)


def _live(job: TransferJob) -> None:
    # As the Train page's live_progress: a fragment that reruns itself while the job runs.
    @st.fragment(run_every=settings.poll_seconds() if job.running else None)
    def live() -> None:
        snap = job.snapshot()
        st.progress(snap.fraction, text=snap.message)
        if job.running:
            st.button("Stop comparison", on_click=job.stop, key="transfer_compare_stop")
        if snap.error:
            st.error(state.scrub_paths(snap.error))
        if snap.results:
            cols = st.columns(2)
            cols[0].plotly_chart(comparison_figure(snap.results), key="transfer_curves_auc")
            cols[1].plotly_chart(
                comparison_figure(snap.results, metric="val_loss"), key="transfer_curves_loss"
            )
            st.dataframe(pd.DataFrame(comparison_rows(snap.results)), hide_index=True)
        if not job.running and state.context_changed("transfer_compare_done", str(id(job))):
            st.rerun(scope="app")  # stop polling

    live()


def weights_upload_section(*, max_mb: int) -> None:
    """Models page: add a Keras Applications no-top ImageNet file, list what is available.

    The file is checked (:func:`medviz.weights.add_weights`) before it is copied
    where Keras looks; the folder is the server's, shared by every session.
    """
    import tempfile
    from pathlib import Path

    from medviz.weights import add_weights, list_weights

    st.markdown(
        "**Pretrained backbone weights (offline).** Upload a Keras Applications ImageNet file "
        "without its top (e.g. `efficientnetb0_notop.h5`, copied from a machine with "
        "internet). It is checked (architecture, no top, weight shapes, Keras' published hash "
        "where there is one) and put where Keras looks, for every user of this server."
    )
    upload = st.file_uploader(
        "Weights (.h5)", type=["h5"], max_upload_size=max_mb, key="models_weights_upload"
    )
    if (
        st.button(
            "Check and add",
            icon=":material/verified:",
            disabled=upload is None,
            key="models_weights_add",
        )
        and upload is not None
    ):
        with tempfile.TemporaryDirectory(prefix="medviz-weights-") as tmp:
            path = Path(tmp) / "upload.h5"
            path.write_bytes(upload.getvalue())
            try:
                added = add_weights(path)
            except MedvizError as err:
                st.error(state.scrub_paths(str(err)), icon=":material/error:")
            else:
                st.success(f"Added {added.arch} ImageNet weights ({added.hash_check}).")
    rows = [
        {
            "architecture": w.arch,
            "MB": round(w.size_bytes / 1e6, 1),
            "sha256": w.sha256[:16],
            "check": w.hash_check,
            "file": Path(w.path).name,
        }
        for w in list_weights()
    ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="models_weights_list")
