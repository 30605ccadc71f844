"""Train: architecture, hyper-parameters and callbacks; training runs in the background."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from medviz.augment import AugmentConfig
from medviz.data import DATASETS
from medviz.metrics import format_mean_std
from medviz.plots import runs_figure
from medviz.services.jobs import TrainingJob, slug
from medviz.training import TrainConfig
from medviz.ui import cache, components, pages, settings, state, train_runs, training_view
from medviz.ui import transfer as transfer_ui
from medviz.zoo import ARCHITECTURES, DEFAULT_ARCH

components.page_header(
    "train",
    "Pick an architecture and its training settings. Training runs in the background: you "
    "can change settings or switch pages while it runs, and stop it at any time.",
)

app = state.get()
choice = components.require_dataset()
spec = DATASETS.get(choice.registry_name or "")
running = state.running_job()
train_runs.resume_panel(choice, running=running)

# --- settings ------------------------------------------------------------------------------------
with st.container(border=True):
    st.markdown(f"**Dataset:** {choice.label}")
    top = st.columns([2, 1, 1])
    arch = top[0].selectbox(
        "Architecture",
        list(ARCHITECTURES),
        index=list(ARCHITECTURES).index(DEFAULT_ARCH),
        format_func=lambda a: ARCHITECTURES[a].title,
        key="train_arch",
    )
    arch_spec = ARCHITECTURES[arch]
    default_size = max(choice.image_size or arch_spec.default_size, arch_spec.min_size)
    size = int(
        top[1].number_input(
            "Image size (px)",
            min_value=arch_spec.min_size,
            max_value=512,
            value=default_size,
            step=8,
            key=f"train_size_{arch}",
        )
    )
    channels = choice.channels or (spec.channels if spec else 1)
    top[2].markdown("Colour")
    top[2].markdown("grey (1 channel)" if channels == 1 else "RGB (3 channels)")
    st.caption(arch_spec.description)
    arch_options: dict[str, object] = {}
    pretrained: str | None = None
    fine_tune_from = 0
    if arch_spec.transfer:
        # Status shown before training: ImageNet cache, local file, MedViz backbone or random.
        pretrained, mode, fine_tune_from = transfer_ui.weights_options(arch, key="train")
        arch_options = {"mode": mode, "fine_tune_from": fine_tune_from}

    n_classes = len(spec.class_names) if spec is not None else None
    if n_classes is None:
        with components.user_errors():
            n_classes = cache.dataset(choice).n_classes
    if n_classes:
        summary = None
        with components.user_errors(), st.spinner("Building the architecture…"):
            summary = cache.architecture_summary(arch, size, channels, n_classes)
        if summary is not None:
            rows, trainable, total = summary
            st.markdown(
                f"**{total:,} parameters** ({trainable:,} trainable) · {len(rows)} layers · "
                f"input {size}×{size}×{channels} · {n_classes} classes"
            )
            with st.expander("Layer table", icon=":material/table_rows:"):
                st.dataframe(pd.DataFrame(rows), hide_index=True, key="train_layers")

    st.markdown("**Hyper-parameters**")
    hp = st.columns(5)
    cap = settings.max_epochs()
    epochs = int(
        hp[0].number_input(
            "Epochs", 1, cap, min(15, cap), key="train_epochs", help=f"At most {cap}."
        )
    )
    batch_size = hp[1].selectbox("Batch size", [8, 16, 32, 64, 128], index=2, key="train_batch")
    learning_rate = hp[2].select_slider(
        "Learning rate",
        options=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
        value=3e-3,
        format_func=lambda v: f"{v:g}",
        key="train_lr",
    )
    optimizer = hp[3].selectbox("Optimizer", ["adam", "sgd"], key="train_optimizer")
    seed = int(hp[4].number_input("Seed", 0, 2**31 - 1, 0, key="train_seed"))

    st.markdown("**Callbacks, imbalance and repeats**")
    cb = st.columns(5)
    monitor = cb[0].selectbox(
        "Best epoch by", ["val_auc", "val_loss", "val_accuracy"], key="train_monitor"
    )
    early = int(
        cb[1].number_input(
            "Early stopping patience", 0, 50, 5, key="train_early", help="0 = never stop early."
        )
    )
    reduce_lr = int(
        cb[2].number_input(
            "Halve LR after", 0, 50, 2, key="train_reduce", help="Epochs without progress; 0 = off."
        )
    )
    imbalance = cb[3].selectbox(
        "Class imbalance",
        ["none", "class-weights", "undersample"],
        format_func={
            "none": "ignore",
            "class-weights": "class weights",
            "undersample": "undersample",
        }.get,
        key="train_imbalance",
    )
    repeats = int(
        cb[4].number_input(
            "Repeats (seeds)", 1, 10, 1, key="train_repeats", help="Mean ± std over seeds."
        )
    )

    more = st.columns(3)
    augment = app.augment if app.augment is not None else (spec.augment if spec else None)
    use_augment = more[0].toggle(
        "Augmentation",
        value=augment is not None and not augment.is_identity,
        key="train_use_augment",
        help="The settings of the Augment page (or the dataset's recommended ones).",
    )
    label_smoothing = more[1].slider("Label smoothing", 0.0, 0.3, 0.0, 0.05, key="train_smoothing")
    jit_options: tuple[bool | str, ...] = ("auto", True, False)
    jit = more[2].selectbox(
        "XLA compile",
        jit_options,
        index=jit_options.index(settings.jit_default()),
        format_func=lambda v: {"auto": "auto (measured here)", True: "on", False: "off"}[v],
        key="train_jit",
        help="XLA compiles the training step: seconds at the start, faster or slower epochs "
        "after, depending on the machine. Auto times both on first use and remembers.",
    )
    use_logs = st.toggle(
        "TensorBoard logs",
        value=False,
        key="train_logs",
        disabled=settings.runs_dir() is None,
        help="Curves and per-epoch Grad-CAM images of a few validation images for TensorBoard, "
        "plus a CSV of every epoch, in the run store's logs folder (single runs, not repeats).",
    )
    default_title = f"{arch} on {choice.label}"
    title = st.text_input("Model name", value=default_title, key=f"train_title_{arch}")
    modality = (
        spec.modality
        if spec is not None
        else st.text_input(
            "Imaging modality (recorded in the model card)", value="unknown", key="train_modality"
        )
    )

    start = st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        disabled=running is not None,
        help="One training at a time per session." if running else None,
        key="train_start",
    )

if start and running is None:
    with components.user_errors():
        config = TrainConfig(
            arch=arch,
            image_size=size,
            epochs=epochs,
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            optimizer=optimizer,
            seed=seed,
            early_stopping_patience=early or None,
            reduce_lr_patience=reduce_lr or None,
            monitor=monitor,
            imbalance=imbalance,
            augment=(augment or AugmentConfig()) if use_augment else AugmentConfig.none(),
            label_smoothing=float(label_smoothing),
            arch_options=arch_options,
            jit_compile=jit,
            pretrained=pretrained,
        )
        with st.spinner("Loading images…"):
            data = cache.dataset(choice, image_size=size)
        missing = {"train", "val"} - set(data.available_splits)
        if missing:
            st.error(
                f"{choice.label} has no {' or '.join(sorted(missing))} split: training needs "
                "both (validation picks the best epoch)."
            )
        else:
            log_dir = (
                train_runs.log_folder(title or default_title) if use_logs and repeats == 1 else None
            )
            if log_dir is not None:
                from medviz.training_logs import require_tensorboard

                require_tensorboard()  # a missing extra is one clear message, before training
            job = TrainingJob(
                name=slug(title or default_title),
                title=title or default_title,
                config=config,
                data=data,
                dataset_label=choice.label,
                modality=modality or "unknown",
                repeats=repeats,
                runs_dir=settings.runs_dir(),
                log_dir=log_dir,
                dataset_key=choice.key,
            )
            state.add_job(job.start())
            st.rerun()

if arch_spec.transfer:
    compare = st.expander("Compare transfer modes", icon=":material/compare_arrows:")
    with compare, components.user_errors():
        compare_config = TrainConfig(
            arch=arch,
            image_size=size,
            epochs=epochs,
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            seed=seed,
            early_stopping_patience=early or None,
            monitor=monitor,
            augment=(augment or AugmentConfig()) if use_augment else AugmentConfig.none(),
            jit_compile=jit,
            pretrained=pretrained,
        )
        transfer_ui.compare_section(
            compare_config,
            lambda: cache.dataset(choice, image_size=size),
            fine_tune_from=fine_tune_from,
        )

# --- the running (or last) job -------------------------------------------------------------------
job = app.jobs[0] if app.jobs else None
if job is None:
    st.stop()


training_view.live_job(job, key="train")  # progress, Stop and curves, shared with Experiments
train_runs.show_logs(job)
done = not job.running
state.collect_finished_jobs()  # idempotent: the finished model joins the session's models

if done:
    if job.status == "failed":
        st.error(job.error or "Training failed.", icon=":material/error:")
    elif job.best is None:
        st.warning(job.error or "Training ended before any model was kept.")
    else:
        best = job.best
        split = job.summary_split or "val"
        ev = best.evaluations.get(split)
        note = " (stopped by you; best epoch kept)" if job.status == "stopped" else ""
        st.success(
            f"**{job.title}** is ready{note} and is now the active model.",
            icon=":material/check_circle:",
        )
        if ev is not None:
            m = st.columns(4)
            m[0].metric(f"AUC ({split})", "n/a" if math.isnan(ev.auc) else f"{ev.auc:.3f}")
            m[1].metric(f"Accuracy ({split})", f"{ev.accuracy:.1%}")
            m[2].metric("Balanced accuracy", f"{ev.balanced_accuracy:.1%}")
            m[3].metric("Best epoch", best.result.best_epoch + 1)
        transfer_ui.show_trained_status(best.result.weights)
        if job.summary and len(job.runs) > 1:
            st.markdown(
                f"**{len(job.runs)} runs** (seeds {job.config.seed}…): mean ± std on {split}"
            )
            st.dataframe(
                pd.DataFrame(
                    [
                        {"metric": k, "mean ± std": format_mean_std(*v)}
                        for k, v in job.summary.items()
                    ]
                ),
                hide_index=True,
            )
            st.plotly_chart(runs_figure(job.summary), key=f"train_runs_{job.id}")
        links = st.columns(3)
        links[0].page_link(
            pages.path("evaluate"), label="Evaluate it", icon=":material/monitoring:"
        )
        links[1].page_link(
            pages.path("classify"),
            label="Classify with it",
            icon=":material/image_search:",
        )
        links[2].page_link(pages.path("models"), label="Download it", icon=":material/download:")

if len(app.jobs) > 1:
    with st.expander(f"Earlier trainings in this session ({len(app.jobs) - 1})"):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "model": j.title,
                        "status": j.status,
                        "epochs": j.config.epochs,
                        "runs": len(j.runs),
                        "dataset": j.dataset_label,
                    }
                    for j in app.jobs[1:]
                ]
            ),
            hide_index=True,
        )
