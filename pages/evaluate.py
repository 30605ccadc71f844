"""Evaluate: metrics with confidence intervals, clickable confusion matrix, curves, thresholds."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from medviz.data import DATASETS
from medviz.metrics import (
    evaluation_at_threshold,
    format_mean_std,
    normalize_class_name,
    summarize_runs,
    threshold_for_sensitivity,
)
from medviz.plots import (
    calibration_figure,
    confusion_matrix_figure,
    per_class_figure,
    pr_figure,
    roc_figure,
    runs_figure,
    threshold_figure,
)
from medviz.ui import cache, components, matching, state
from medviz.ui.state import DatasetChoice

N_BOOTSTRAP = 500

components.page_header(
    "evaluate",
    "How good is the active model on held-out data — and how sure are we? Click a cell of "
    "the confusion matrix to see its images.",
)

entry = components.require_model("Evaluate measures the active model on a dataset.")
if entry is None:
    st.stop()
card = entry.card
trained_on = str(card.training.get("dataset", ""))
wanted = {normalize_class_name(c) for c in card.class_names}


def _matches(names: tuple[str, ...]) -> bool:
    return {normalize_class_name(c) for c in names} == wanted


# --- which data ----------------------------------------------------------------------------------
choices: dict[str, DatasetChoice] = {}
labels: dict[str, str] = {}
if trained_on in DATASETS and DATASETS[trained_on].is_available():
    own = DatasetChoice("registry", trained_on, trained_on, card.image_size, card.channels)
    choices[own.key] = own
    labels[own.key] = f"{trained_on} — its training dataset (held-out splits)"
active = state.active_dataset()
if active is not None and active.source != trained_on:
    choices[active.key] = active
    labels[active.key] = f"{active.label} — your dataset"
for name, spec in DATASETS.items():
    if name == trained_on or not spec.is_available() or (active and active.source == name):
        continue
    probe = DatasetChoice("registry", name, name, spec.image_size, spec.channels)
    note = "classes match" if _matches(spec.class_names) else "other classes"
    choices[probe.key] = probe
    labels[probe.key] = f"{name} — cross-dataset ({note})"
if not choices:
    st.info("No dataset to evaluate on: choose one on the **Data** page first.")
    st.stop()

keys = list(choices)
top = st.columns([3, 1, 1])
picked = top[0].selectbox("Evaluate on", keys, format_func=labels.get, key="eval_dataset")
choice = choices[picked or keys[0]]
default_limit = 0 if choice.source in ("synthetic-microcalc", "pneumoniamnist") else 250
limit = int(
    top[2].number_input(
        "Images per class (0 = all)",
        0,
        100_000,
        choice.limit_per_class or default_limit,
        step=50,
        key=f"eval_limit_{picked}",
        help="Large folders take a while to decode on a CPU; a cap gives a quick estimate.",
    )
)
choice = replace(choice, limit_per_class=limit or None)
# Numbered data (MedMNIST labels, 0/ and 1/ folders) is named here to match the model's classes.
classes = st.text_input(
    "Data class names (optional)",
    key=f"eval_classes_{picked}",
    placeholder=",".join(card.class_names),
    help="When the data's classes are numbers (0, 1 …) or named differently: one name per "
    "data class in label order, e.g. 'normal,pneumonia', or pairs '0=normal,1=pneumonia'.",
).strip()
data_key = f"{choice.key}:classes={classes}" if classes else choice.key

# Other classes: say so before loading and predicting thousands of images for nothing
# (unless the user names the data's classes: that mapping is checked when loading).
problem = None
if not classes:
    with components.user_errors():
        problem = matching.check_choice(choice, card, feature="Evaluate", check_input=False)
if problem is not None:
    st.error(problem, icon=":material/rule:")
    st.stop()

data = None
with components.user_errors(), st.spinner("Loading the images at the model's input size…"):
    data = cache.dataset_for_model(choice, card, classes=classes or None)
if data is None:
    st.stop()
splits = list(data.available_splits)
default_split = "test" if "test" in splits else splits[-1]
split = top[1].selectbox("Split", splits, index=splits.index(default_split), key="eval_split")

if choice.source != trained_on:
    st.info(
        f"**Cross-dataset evaluation:** the model was trained on *{trained_on or 'unknown data'}* "
        f"and is tested on *{choice.label}*. Expect lower scores: a drop shows how much the model "
        "depends on its training source.",
        icon=":material/swap_horiz:",
    )
elif split != "test":
    st.caption(f"The {split} split was used during training (model selection or fitting).")

ev = None
with components.user_errors(), st.spinner("Predicting…"):
    ev = cache.evaluation(
        cache.model_token(entry), data_key, split, N_BOOTSTRAP, cache.bundle(entry), data
    )
if ev is None:
    st.stop()
subset = data.split(split)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# --- headline numbers (filled in below, once the threshold is known) -----------------------------
headline = st.container()

# --- threshold and confusion ---------------------------------------------------------------------
POLICIES = {"calibrated": "0.5 calibrated", "youden": "Youden's J", "sensitivity": "Sensitivity"}


def _on_slider(value: float) -> float:
    # Floored to the slider's step: never above a policy's threshold, so a target
    # sensitivity reached at the exact value is still reached.
    return math.floor(float(value) * 1000 + 1e-9) / 1000


def _card_policy() -> str:
    method = str(card.threshold_method or "").casefold()
    if "youden" in method:
        return "youden"
    return "sensitivity" if "sensitivity" in method else "calibrated"


def _policy_threshold(policy: str, target: float) -> tuple[float | None, str]:
    """The threshold a policy picks (on this data's validation split) and how it was found."""
    if policy == "calibrated":
        return 0.5, "Threshold 0.5 on the temperature-calibrated probability."
    if "val" not in data.available_splits:
        return None, f"Threshold unchanged: {choice.label} has no validation split."
    val = cache.evaluation(
        cache.model_token(entry), choice.key, "val", 0, cache.bundle(entry), data
    )
    if policy == "youden":
        value, how = val.youden_threshold or math.nan, "Youden's J"
    else:
        value = threshold_for_sensitivity(val.y_true, val.y_prob, target)
        how = f"sensitivity ≥ {target:.0%}"
    if not math.isfinite(value):
        return None, f"Threshold unchanged: the validation split lacks a class ({how})."
    return (
        value,
        f"Threshold from {how} on the validation split of {choice.label} ({val.n} images).",
    )


y_true, y_prob = ev.y_true, ev.y_prob
left, right = st.columns(2, gap="large")
if ev.is_binary:
    with right:
        # The card's threshold and policy are where a model starts; a policy chosen later
        # moves the slider, which stays free to move by hand.
        setting = state.recall("evaluate_threshold", context=entry.key)
        if setting is None or any(
            k not in st.session_state for k in ("eval_policy", "eval_threshold")
        ):
            setting = state.ThresholdSetting(
                note=f"Threshold from the model card: {card.threshold_method}."
                if card.threshold is not None
                else "Threshold 0.5 on the temperature-calibrated probability."
            )
            state.remember("evaluate_threshold", setting, context=entry.key)
            st.session_state["eval_policy"] = _card_policy()
            st.session_state["eval_threshold"] = _on_slider(
                card.threshold if card.threshold is not None else 0.5
            )
        policy = (
            st.segmented_control(
                "Threshold policy",
                list(POLICIES),
                format_func=POLICIES.get,
                required=True,
                key="eval_policy",
                help="Sets the slider: 0.5 on the calibrated probability; Youden's J (the "
                "point of the validation ROC curve farthest from chance); or the highest "
                "threshold that reaches a target sensitivity on the validation split.",
            )
            or "calibrated"
        )
        slider_col, target_col = st.columns([2, 1])
        target = float(
            target_col.number_input(
                "Target sensitivity",
                0.5,
                1.0,
                0.9,
                0.01,
                key="eval_target_sensitivity",
                disabled=policy != "sensitivity",
            )
        )
        wanted = state.PolicyRequest(
            policy, target if policy == "sensitivity" else None, choice.key
        )
        if setting.applied is None:
            setting.applied = wanted  # the card's value stands
        elif wanted != setting.applied:
            setting.applied = wanted
            value, note = _policy_threshold(policy, target)
            if value is not None:
                st.session_state["eval_threshold"] = _on_slider(value)
            setting.note = note
        threshold = slider_col.slider(
            f"Decision threshold on P({card.class_names[1]})",
            0.0,
            1.0,
            step=0.001,
            format="%.3f",
            key="eval_threshold",
            help="Every number and figure on this page follows it.",
        )
        st.caption(setting.note)
        ev = evaluation_at_threshold(ev, threshold)
        sens, spec = ev.per_class[1].sensitivity, ev.per_class[1].specificity
        c = st.columns(2)
        c[0].metric("Sensitivity", _fmt(sens))
        c[1].metric("Specificity", _fmt(spec))
        st.plotly_chart(threshold_figure(y_true, y_prob, threshold), key="eval_threshold_fig")
else:
    with right:
        st.plotly_chart(per_class_figure(ev), key="eval_per_class_fig")
confusion, y_pred = ev.confusion, ev.y_pred

with headline:
    m = st.columns(5)
    m[0].metric("Images", f"{ev.n:,}")
    m[1].metric(
        "Accuracy",
        f"{ev.accuracy:.1%}",
        help=None if ev.threshold is None else f"At threshold {ev.threshold:.3f}",
    )
    m[2].metric("Balanced accuracy", f"{ev.balanced_accuracy:.1%}")
    low, high = ev.auc_ci
    m[3].metric(
        "AUC" if ev.is_binary else "Macro AUC (one-vs-rest)",
        _fmt(ev.auc),
        help=f"95 % bootstrap CI {_fmt(low)}–{_fmt(high)} ({N_BOOTSTRAP} resamples)",
    )
    m[4].metric("ECE (calibration)", _fmt(ev.ece))
    st.caption(f"AUC 95 % confidence interval: {_fmt(low)} – {_fmt(high)}")

# The shown cell is remembered per model, data and split: a click on the chart is lost as
# soon as the figure changes (e.g. with the threshold), the remembered cell is not.
names = list(card.class_names)
cells = [(t, p) for t in range(len(names)) for p in range(len(names))]
cell_context = f"{entry.key}|{choice.key}|{split}"


def _clicked(selection) -> tuple[int, int] | None:
    """The cell of the chart's current click (read before the chart is drawn again)."""
    points = list(((selection or {}).get("selection") or {}).get("points") or [])
    if not points:
        return None
    point = points[0]
    custom = point.get("customdata")
    if custom is not None and len(custom) >= 2:
        return (int(custom[0]), int(custom[1]))
    if point.get("y") in names and point.get("x") in names:
        return (names.index(point["y"]), names.index(point["x"]))
    return None


clicked = _clicked(st.session_state.get("eval_confusion"))
if clicked is None:
    state.remember("evaluate_click", None, context=cell_context)
elif clicked != state.recall("evaluate_click", context=cell_context):
    # A new click (the same click stays in the chart's state on every rerun).
    state.remember("evaluate_click", clicked, context=cell_context)
    state.remember("evaluate_cell", clicked, context=cell_context)


def _cell_picked() -> None:
    state.remember("evaluate_cell", st.session_state["eval_cell"], context=cell_context)


cell = state.recall("evaluate_cell", context=cell_context)
if cell not in cells:
    # Nothing chosen yet: the errors first (for binary models, the missed positives).
    errors = [c for c in cells if c[0] != c[1] and confusion[c] > 0]
    cell = (1, 0) if ev.is_binary and confusion[1, 0] > 0 else (errors[0] if errors else (0, 0))

with left:
    figure = components.clickable_cells(
        confusion_matrix_figure(confusion, card.class_names), card.class_names, selected=cell
    )
    st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="eval_confusion")

st.session_state["eval_cell"] = cell
st.selectbox(
    "Show the images of a cell (or click a cell)",
    cells,
    format_func=lambda c: f"true {names[c[0]]} → predicted {names[c[1]]} ({confusion[c]})",
    key="eval_cell",
    on_change=_cell_picked,
)
true_k, pred_k = cell
members = np.flatnonzero((y_true == true_k) & (y_pred == pred_k))
st.markdown(
    f"**True {names[true_k]}, predicted {names[pred_k]}** — {len(members)} images"
    + (" (the 16 most confident)" if len(members) > 16 else "")
    + (f"; under each, P({names[pred_k]})" if len(members) else "")
)
if len(members):
    order = members[np.argsort(-y_prob[members, pred_k])][:16]
    # Only the number under each image: "P(microcalcification)" is wider than an eighth
    # of the page and would be broken mid-word.
    components.image_grid(
        [subset.images[i] for i in order],
        [f"P = {y_prob[i, pred_k]:.2f}" for i in order],
        columns=8,
        size=128,
    )

# --- curves --------------------------------------------------------------------------------------
VIEWS = ["ROC", "Precision–recall", "Calibration", "Per class", "Pixel-threshold baseline"]
view = components.views(VIEWS, key="eval_view")
if view == VIEWS[0]:
    st.plotly_chart(roc_figure(ev), key="eval_roc")
if view == VIEWS[1]:
    st.plotly_chart(pr_figure(ev), key="eval_pr")
if view == VIEWS[2]:
    st.plotly_chart(calibration_figure(ev), key="eval_calibration")
    if card.calibration:
        st.caption(
            f"Temperature scaling (T = {card.temperature:.2f}, fitted on validation) changed the "
            f"validation ECE from {_fmt(card.calibration.get('val_ece_before'))} to "
            f"{_fmt(card.calibration.get('val_ece_after'))}."
        )
if view == VIEWS[3]:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "class": r.name,
                    "images": r.support,
                    "sensitivity": r.recall,
                    "specificity": r.specificity,
                    "precision": r.precision,
                    "F1": r.f1,
                }
                for r in ev.per_class
            ]
            + [
                {
                    "class": f"{kind} average",
                    "images": int(sum(r.support for r in ev.per_class)),
                    "sensitivity": values["recall"],
                    "specificity": None,
                    "precision": values["precision"],
                    "F1": values["f1"],
                }
                for kind, values in ev.averages().items()
            ]
        ),
        hide_index=True,
        key="eval_per_class_table",
    )
    st.caption(
        "Macro average: every class counts the same; weighted average: each class by its "
        "number of images (as scikit-learn's classification report)."
    )

if view == VIEWS[4]:
    if "train" not in data.available_splits:
        st.info(
            "The pixel-threshold baseline learns each class's share of dark pixels from a train "
            "split, and this data has none. Choose a dataset with a train split on Data.",
            icon=":material/info:",
        )
    else:
        grey = st.slider(
            "Grey level: pixels darker than this count",
            0,
            255,
            120,
            5,
            key="eval_baseline_grey",
            help="The classical baseline of the source work (65.5 % on COVID CT at level 120).",
        )
        with components.user_errors(), st.spinner("Fitting the baseline…"):
            base = cache.baseline(data_key, split, int(grey), data)
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "": name,
                            "accuracy": e.accuracy,
                            "balanced accuracy": e.balanced_accuracy,
                            "AUC": e.auc,
                            "AUC 95 % CI": f"{e.auc_ci[0]:.3f}–{e.auc_ci[1]:.3f}",
                        }
                        for name, e in (("this model", ev), ("pixel-threshold baseline", base))
                    ]
                ),
                hide_index=True,
                key="eval_baseline_table",
            )
            st.caption(
                f"Same {split} images and metrics for both. The baseline counts pixels darker "
                f"than {grey} and picks the class whose training images have the nearest mean "
                "count: what a careful person could do without any learning. A CNN that does "
                "not clearly beat it has not learned much beyond brightness."
            )

# --- several runs --------------------------------------------------------------------------------
st.subheader("Compare runs", anchor=False)
summaries = [
    e for e in state.get().models.values() if e.info.get("summary") and e.info.get("runs", 0) > 1
]
for other in summaries:
    summary = other.info["summary"]
    st.markdown(
        f"**{other.title}** — {other.info['runs']} seeds on {other.info.get('summary_split')}: "
        + ", ".join(f"{k} {format_mean_std(*v)}" for k, v in summary.items() if k != "seconds")
    )
candidates = {key: e for key, e in state.get().models.items() if _matches(e.card.class_names)}
for model in cache.shipped_models():
    if model.card is not None and _matches(model.card.class_names):
        candidates.setdefault(model.key, cache.shipped_entry(model))
options = [k for k in candidates if k != entry.key]
if not options:
    st.caption(
        "Train the same configuration with several seeds (Train → Repeats), or train other "
        "models with these classes, to compare them here as mean ± std."
    )
else:
    chosen = st.multiselect(
        "Models to compare with the active one on this split",
        options,
        format_func=lambda k: candidates[k].title,
        key="eval_compare",
    )
    if chosen:
        rows = []
        with components.user_errors(), st.spinner("Evaluating the other models…"):
            for key in [entry.key, *chosen]:
                other = candidates.get(key, entry)
                other_data = cache.dataset_for_model(choice, other.card, classes=classes or None)
                other_ev = cache.evaluation(
                    cache.model_token(other),
                    data_key,
                    split,
                    0,
                    cache.bundle(other),
                    other_data,
                )
                rows.append(
                    {
                        "model": other.title,
                        "accuracy": other_ev.accuracy,
                        "balanced_accuracy": other_ev.balanced_accuracy,
                        "auc": other_ev.auc,
                        "ece": other_ev.ece,
                    }
                )
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="eval_compare_table")
            summary = summarize_runs([{k: v for k, v in r.items() if k != "model"} for r in rows])
            st.markdown(
                "**Mean ± std over these models:** "
                + ", ".join(f"{k} {format_mean_std(*v)}" for k, v in summary.items())
            )
            st.plotly_chart(runs_figure(summary), key="eval_runs_fig")


# --- robustness ----------------------------------------------------------------------------------
def _robustness_section() -> None:
    """How robust is it? The stress test on a small sample of this split, run on a click.

    Self-contained (its own imports and keys) so it merges cleanly with other changes here.
    """
    from medviz.plots import stress_figure
    from medviz.stress import SHIFTS
    from medviz.ui import settings

    st.subheader("How robust is it?", anchor=False)
    n_images = settings.stress_images()
    st.caption(
        f"Degrades up to {n_images} images of this split in controlled ways (contrast, gamma, "
        "blur, noise, JPEG, resolution, rotation, crop) at severities 1–5 and measures the model "
        "at its operating threshold. A steep fall warns that images from another scanner or "
        "site may fool it."
    )
    token = cache.model_token(entry)
    wanted = state.StressRequest(token, choice.key, split, n_images)
    if st.button("Run the stress test", icon=":material/speed:", key="eval_stress_run"):
        state.remember("evaluate_stress", wanted)
    if state.recall("evaluate_stress") != wanted:
        return
    report = None
    with components.user_errors(), st.spinner("Shifting images and predicting…"):
        report = cache.stress(token, choice.key, split, n_images, cache.bundle(entry), data)
    if report is None:
        return
    worst = report.shifts.index(report.worst_shift)
    at_max = report.accuracy[worst, -1]
    cols = st.columns(3)
    cols[0].metric(
        "Clean accuracy",
        f"{report.clean_accuracy:.1%}",
        help=f"{report.n} of {report.n_available} images (seeded, stratified sample)",
    )
    cols[1].metric("Worst shift", SHIFTS[report.worst_shift].title)
    cols[2].metric(
        f"Its accuracy at severity {report.severities[-1]}",
        f"{at_max:.1%}",
        delta=f"{at_max - report.clean_accuracy:+.1%}",
    )
    st.plotly_chart(stress_figure(report), key="eval_stress_fig")
    table = {
        SHIFTS[name].title: {
            **{f"accuracy {s}": report.accuracy[i, j] for j, s in enumerate(report.severities)},
            **{f"AUC {s}": report.auc[i, j] for j, s in enumerate(report.severities)},
        }
        for i, name in enumerate(report.shifts)
    }
    st.dataframe(pd.DataFrame(table).T, key="eval_stress_table")
    st.caption(
        f"{report.n} images in {report.seconds:.1f} s. Every image of a split: "
        "`python -m medviz stress --model … --data … --split …`."
    )


_robustness_section()
