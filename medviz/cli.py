"""``python -m medviz``: the command-line front end over the same calls as the app.

Commands: ``datasets``, ``inspect``, ``train``, ``evaluate``, ``stress``, ``predict``,
``fit-ood``, ``baseline``, and (from :mod:`medviz.explain.commands`) ``explain``, ``dream``,
``localize``. Conventions are in :mod:`medviz.cli_support`. ``medviz --version`` prints the
version; TensorFlow's start-up lines are kept off stderr unless ``--verbose``
(:mod:`medviz.quiet`).

Why one module (over 600 lines): one short function per command plus the one
argparse tree that lists them; the explanation commands already live in
:mod:`medviz.explain.commands`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

from medviz import __version__
from medviz.cli_support import (
    EXIT_BAD_INPUT,
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_RUNTIME,
    CliParser,
    Progress,
    close_progress,
    exit_code_for,
    print_json,
    set_quiet,
)
from medviz.errors import DataError, MedvizError

AUGMENT_ALIASES = {
    "rotation": "rotation_deg",
    "zoom": "zoom_max",
    "shift": "shift",
    "shear": "shear",
    "hflip": "horizontal_flip",
    "vflip": "vertical_flip",
    "brightness": "brightness",
    "contrast": "contrast",
    "noise": "noise_sigma",
    "elastic": "elastic",
}


def parse_augment(text: str):
    """``"none"``, ``"default"`` or ``"rotation=5,zoom=1.2,noise=20,hflip"`` → AugmentConfig."""
    from medviz.augment import AugmentConfig

    text = text.strip()
    if text in ("", "default"):
        return AugmentConfig()
    if text == "none":
        return AugmentConfig.none()
    values: dict[str, object] = {"rotation_deg": 0.0, "zoom_max": 1.0}
    for item in text.split(","):
        key, _, raw = item.strip().partition("=")
        if key not in AUGMENT_ALIASES:
            raise MedvizError(
                f"unknown augmentation {key!r} in --augment; use 'none', 'default' or a comma list "
                f"of {sorted(AUGMENT_ALIASES)} with '=value' (flips take no value)"
            )
        field = AUGMENT_ALIASES[key]
        if field.endswith("_flip"):
            values[field] = raw.lower() not in ("0", "false", "no") if raw else True
        else:
            try:
                values[field] = float(raw)
            except ValueError:
                raise MedvizError(f"--augment {key} needs a number, got {raw!r}") from None
    return AugmentConfig(**values)


# --- commands ----------------------------------------------------------------------------------


def cmd_datasets(args: argparse.Namespace) -> int:
    from medviz.data.registry import DATASETS, data_root

    rows = [
        {
            "name": spec.name,
            "title": spec.title,
            "modality": spec.modality,
            "classes": list(spec.class_names),
            "kind": spec.kind,
            "available": spec.is_available(),
            "path": str(spec.path()) if spec.path() else None,
            "licence": spec.licence,
            "shippable": spec.shippable,
        }
        for spec in DATASETS.values()
    ]
    if args.json:
        print_json({"data_root": str(data_root()), "datasets": rows})
    else:
        for row in rows:
            mark = "yes" if row["available"] else "no "
            print(f"{row['name']:<22} available={mark}  {row['title']}")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from medviz.data import health_report, load_dataset

    data = load_dataset(
        args.data,
        image_size=args.image_size,
        limit_per_class=args.limit_per_class,
        group_pattern=args.group_pattern,
        stream=args.stream,
    )
    report = health_report(data)
    cross = None
    if args.against:
        from medviz.data import cross_dataset_report

        other = load_dataset(
            args.against, limit_per_class=args.limit_per_class, group_pattern=args.group_pattern
        )
        cross = cross_dataset_report(data, other)
    if args.json:
        print_json({**report.to_dict(), "cross_dataset": cross.to_dict() if cross else None})
        return EXIT_OK
    print(f"{data.name}: {len(data)} images, classes {list(data.class_names)}")
    for split, counts in report.counts.items():
        print(f"  {split:<5} " + ", ".join(f"{c}={n}" for c, n in counts.items()))
    if report.groups:
        g = report.groups
        print(
            f"  groups: {g['n_groups']} ({g['n_patient']} patients from file names), "
            f"{g['n_multi']} hold several images ({g['n_in_multi']} images, largest "
            f"{g['largest']}); {len(report.group_crossings)} cross splits"
        )
    if report.near_duplicates is not None:
        pairs = report.near_duplicates
        exact = sum(p.exact for p in pairs)
        print(
            f"  near-duplicates: {len(pairs)} pairs of copies ({exact} byte-identical, "
            f"{len(pairs) - exact} resized/re-encoded/cropped; perceptual hash + correlation)"
        )
        for p in pairs[: args.show_pairs]:
            kind = "identical" if p.exact else "near"
            print(
                f"    {p.source_a} [{p.split_a}, {p.class_a}] ~ {p.source_b} "
                f"[{p.split_b}, {p.class_b}] ({kind})"
            )
        if len(pairs) > args.show_pairs:
            print(f"    … {len(pairs) - args.show_pairs} more (--show-pairs N, or --json)")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    if cross is not None:
        print(
            f"against {cross.name_b} ({cross.n_b} images): {cross.a_matched} of {cross.n_a} "
            f"images of {cross.name_a} have a copy there ({cross.b_matched} of theirs matched); "
            f"split pairs {cross.split_pairs}"
        )
        print(f"  method: {cross.method}")
        for a_src, a_split, b_src, b_split, score in cross.examples[:5]:
            print(f"  e.g. {a_src} [{a_split}] = {b_src} [{b_split}] (r={score:.3f})")
        if cross.warning:
            print(f"  warning: {cross.warning}")
    return EXIT_OK


# Training flags and the TrainConfig field each one sets (for --config overrides).
_TRAIN_FLAGS = {
    "--arch": "arch",
    "--image-size": "image_size",
    "--epochs": "epochs",
    "--batch-size": "batch_size",
    "--lr": "learning_rate",
    "--seed": "seed",
    "--augment": "augment",
    "--imbalance": "imbalance",
    "--patience": "early_stopping_patience",
    "--pretrained": "pretrained",
    "--transfer-mode": "arch_options",
    "--fine-tune-from": "arch_options",
    "--precise-bn": "precise_bn",
}


def _given_fields(argv: list[str], values: dict[str, object]) -> dict[str, object]:
    """The TrainConfig fields whose flags appear on the command line, with their values."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    return {field: values[field] for flag, field in _TRAIN_FLAGS.items() if flag in given}


def config_from_file(path: str | Path, *, overrides: dict[str, object] | None = None):
    """A :class:`~medviz.training.TrainConfig` from a JSON or YAML file.

    The file holds ``TrainConfig`` fields (``augment`` as a dict), either at the
    top level, under ``config`` (an experiment file, :mod:`medviz.experiments`)
    or, as in a model's ``card.json``, under ``training.config``, so
    ``medviz train --config models/X/card.json`` retrains a model with its own
    recipe. Flags given on the command line override the file.

    Raises:
        DataError: Unreadable file, not a mapping, or a field TrainConfig lacks.
    """
    import dataclasses

    from medviz.config_files import read_mapping
    from medviz.training import TrainConfig

    file = Path(path)
    values = read_mapping(file, what="training config")
    if isinstance(values.get("training"), dict):
        values = values["training"].get("config", values)
    elif isinstance(values.get("config"), dict):
        values = values["config"]  # an experiment or recipe file (with a dataset block)
    if not isinstance(values, dict):  # a card whose training record has a non-mapping config
        raise DataError(f"{file} must hold a mapping of TrainConfig fields")
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise DataError(
            f"{file}: unknown TrainConfig field(s) {unknown}; allowed: {sorted(allowed)}"
        )
    # from_dict turns an augment dict into AugmentConfig and keeps an AugmentConfig flag value.
    return TrainConfig.from_dict({**values, **(overrides or {})})


RESUME_FILE = "command.json"
"""File of a CLI run folder holding the arguments and working directory that started it."""


def _resume_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The arguments of the interrupted run ``args.resume``, re-parsed, to train it again.

    Raises:
        MedvizError: Other training flags given, not a run folder, no record of
            its command, or the run is not interrupted.
    """
    import os

    from medviz.store import RunStore

    extra = [a for a in args.argv[1:] if a.startswith("--")]
    extra = [a.split("=", 1)[0] for a in extra]
    allowed = {"--resume", "--json", "--quiet", "--verbose"}
    if set(extra) - allowed:
        raise MedvizError(
            "--resume takes the run's own settings; drop "
            + ", ".join(sorted(set(extra) - allowed))
            + " (allowed with it: --json, --quiet, --verbose)"
        )
    folder = Path(args.resume).resolve()
    record = RunStore(folder.parent).open(folder)
    try:
        saved = json.loads((folder / RESUME_FILE).read_text(encoding="utf-8"))
        argv, cwd = list(saved["argv"]), str(saved["cwd"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise MedvizError(
            f"{folder} does not record the command that started it ({RESUME_FILE}: {err}); "
            "only runs started by `medviz train` can be resumed here"
        ) from None
    if record.status != "interrupted":
        raise MedvizError(
            f"run {record.run_id} is {record.status!r}; only an interrupted run can be resumed"
        )
    resumed = build_parser().parse_args(argv)
    if resumed.repeats > 1:
        raise MedvizError(
            f"run {record.run_id} trained --repeats {resumed.repeats}; only single runs keep "
            "the per-epoch backup that --resume continues from"
        )
    resumed.argv = argv
    resumed.json = args.json
    resumed.resume_record = record
    if Path(cwd).is_dir():
        os.chdir(cwd)  # the run's relative paths (--out, --runs, --data) are relative to it
    return resumed


def transfer_options(args: argparse.Namespace) -> dict[str, object]:
    """``arch_options`` of a transfer architecture from ``--transfer-mode``/``--fine-tune-from``."""
    options: dict[str, object] = {}
    if args.transfer_mode is not None:
        options["mode"] = args.transfer_mode
    if args.fine_tune_from is not None:
        options["fine_tune_from"] = args.fine_tune_from
    return options


def cmd_train(args: argparse.Namespace) -> int:
    if getattr(args, "resume", None):
        args = _resume_arguments(args)
    if not args.out:
        raise MedvizError("train needs --out FOLDER (or --resume RUN_DIR)")
    if args.logdir:
        from medviz.training_logs import require_tensorboard

        require_tensorboard()
        if args.repeats > 1:
            raise MedvizError("--logdir logs one run; drop it or use --repeats 1")
    return _train(args)


def _train(args: argparse.Namespace) -> int:
    import os

    from medviz.data import load_dataset
    from medviz.data.registry import DATASETS
    from medviz.metrics import parse_threshold_policy
    from medviz.pipeline import train_and_package, train_repeats
    from medviz.store import save_bundle
    from medviz.training import TrainConfig

    policy = parse_threshold_policy(args.threshold_policy)  # bad input fails before loading
    from medviz.distributed import plan_distribution, train_and_package_distributed

    if args.distribute != "none" and args.repeats > 1:
        raise MedvizError(f"--repeats {args.repeats} needs --distribute none")
    # A tf.distribute strategy must exist before any other TensorFlow work (data loading).
    plan = plan_distribution(args.distribute)
    data_recipe = None
    if args.config and "--data" not in {a.split("=", 1)[0] for a in args.argv}:
        from medviz.data.recipe import data_recipe_from_file

        # A recipe or experiment file names its dataset (with class names and lesion images):
        # never train it on the default data silently.
        data_recipe = data_recipe_from_file(args.config)
        if data_recipe is not None:
            args.data = data_recipe.name
    spec = DATASETS.get(args.data)
    if args.augment == "default" and spec is not None:
        augment = spec.augment
    else:
        augment = parse_augment(args.augment)
    from_flags = {
        "arch": args.arch,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr or TrainConfig.learning_rate,
        "seed": args.seed,
        "augment": augment,
        "imbalance": args.imbalance,
        "early_stopping_patience": args.patience if args.patience > 0 else None,
        "pretrained": args.pretrained,
        "arch_options": transfer_options(args),
        "precise_bn": args.precise_bn,
    }
    given = _given_fields(args.argv, from_flags)
    if args.config:
        config = config_from_file(args.config, overrides=given)
    else:
        # The dataset's measured recipe fills what the command line leaves unsaid.
        recipe = {k: v for k, v in (spec.recipe if spec else {}).items() if k not in given}
        config = TrainConfig(**{**from_flags, **recipe})
    from medviz.training import resolve_config_weights
    from medviz.zoo import get_arch

    weights = resolve_config_weights(config)  # missing weights fail before the data loads
    if get_arch(config.arch).transfer and not args.json:
        print(f"weights: {weights.describe()}")
    load = {
        "image_size": config.image_size,
        "channels": args.channels,
        "seed": config.seed,
        "limit_per_class": args.limit_per_class,
        "group_pattern": args.group_pattern,
        "stream": args.stream,
    }
    if data_recipe is not None:
        from medviz.data.recipe import load_recipe_data

        data = load_recipe_data(data_recipe, **load)
    else:
        data = load_dataset(args.data, **load)
    command = "python -m medviz " + " ".join(shlex.quote(a) for a in args.argv)
    if not plan.is_chief:  # a worker trains its shard; the chief writes the model and the run
        from medviz.cli_distribute import run_worker

        return run_worker(plan, config, data, as_json=args.json)
    name = args.name or Path(args.out).name
    repeats = max(args.repeats, 1)
    progress = Progress(config.epochs * repeats, label="train", unit="batch")
    # batches of earlier repeats; the epoch's last note, kept on the bar during the next epoch
    counted = {"base": 0, "last": -1, "note": ""}

    pause_at = os.environ.get("MEDVIZ_PAUSE_AT_EPOCH", "")

    def on_batch_end(p) -> None:
        if pause_at.isdigit() and p.epoch == int(pause_at) and p.batch == 1:
            # For tests of --resume: stop inside an epoch, after the earlier ones were backed up.
            sys.stderr.write(f"\npaused in epoch {p.epoch + 1}\n")
            sys.stderr.flush()
            time.sleep(3600)
        done = p.epoch * p.batches + p.batch
        if done < counted["last"]:  # the next repeat started
            counted["base"] += p.epochs * p.batches
        counted["last"] = done
        progress.total = p.epochs * p.batches * repeats
        note = f"epoch {p.epoch + 1}/{p.epochs} loss={p.logs.get('loss', float('nan')):.3f}"
        progress.update(
            counted["base"] + done, note=" ".join(filter(None, [note, counted["note"]]))
        )

    def on_epoch_end(p) -> None:
        counted["note"] = f"val_auc={p.logs.get('val_auc', float('nan')):.3f}"

    from medviz.store import CHECKPOINT_WEIGHTS, ModelCard, RunStore, default_preprocessing
    from medviz.store.atomic import atomic_write_json

    runs = RunStore(args.runs)
    record = getattr(args, "resume_record", None)
    if record is None:
        record = runs.create({"data": args.data, **config.to_dict()}, label=name)
        # what `medviz train --resume RUN_DIR` needs to start this run again
        atomic_write_json(record.folder / RESUME_FILE, {"argv": args.argv, "cwd": os.getcwd()})
    else:
        record = RunStore(record.folder.parent).reopen(record)
    size, channels = config.image_size or data.image_shape[0], data.image_shape[-1]

    def on_epoch_end_logged(p) -> None:
        runs.log_history(record, p.history)  # atomically, so a killed run keeps its curves
        if p.best_epoch == p.epoch:  # train() has just replaced the checkpoint weights
            runs.save_checkpoint_card(
                record,
                ModelCard(
                    name=name,
                    class_names=tuple(data.class_names),
                    image_size=size,
                    channels=channels,
                    arch=config.arch,
                    modality=_modality(args.data),
                    preprocessing=default_preprocessing(size, channels),
                    training={
                        "dataset": data.name,
                        "checkpoint_epoch": p.epoch + 1,
                        "monitor": config.monitor,
                        "best_value": p.best_value,
                        "arch_options": dict(config.arch_options),
                        "command": command,
                    },
                    limitations=("Checkpoint of an unfinished run: not calibrated, no threshold.",),
                ),
            )
        on_epoch_end(p)

    options = {
        "name": name,
        "command": command,
        "on_epoch_end": on_epoch_end_logged,
        "modality": _modality(args.data),
        "on_batch_end": on_batch_end,
        "checkpoint_path": record.checkpoint_folder / CHECKPOINT_WEIGHTS,
        "threshold_policy": policy,
        "log_dir": args.logdir,
    }
    if args.repeats > 1:
        repeated = train_repeats(config, data, repeats=args.repeats, **options)
        run, summary = repeated.best, repeated.summary
    else:
        if plan.mode == "none":
            backup = record.folder / "backup"  # every epoch: `--resume` starts from the last one
            run, summary = train_and_package(config, data, backup_dir=backup, **options), None
        else:
            run, summary = train_and_package_distributed(plan, config, data, **options), None
    progress.close()
    folder = save_bundle(run.bundle.model, run.bundle.card, args.out)
    metrics = {split: ev.to_dict() for split, ev in run.evaluations.items()}
    runs.finish(record, model=run.bundle.model, card=run.bundle.card, metrics=metrics)
    plan.finish()  # multiworker: the other workers wait for the chief's files, then all exit
    shutil.rmtree(record.folder / "backup", ignore_errors=True)  # finished: nothing to resume
    split = "test" if "test" in run.evaluations else "val"
    ev = run.evaluations[split]
    payload = {
        "model": str(folder),
        "run": str(record.folder),
        "arch": config.arch,
        "dataset": data.name,
        "epochs_run": run.result.epochs_run,
        "best_epoch": run.result.best_epoch + 1,
        "seconds": round(run.result.seconds, 2),
        "xla": run.result.jit_reason,
        "pretrained": run.result.weights.to_card() if run.result.weights else None,
        "split": split,
        "metrics": ev.to_dict(),
        "threshold": run.bundle.card.threshold,
        "threshold_method": run.bundle.card.threshold_method,
        "threshold_reason": run.bundle.card.threshold_reason,
        "temperature": run.bundle.card.temperature,
        "logdir": str(args.logdir) if args.logdir else None,
    }
    if plan.mode != "none":
        payload.update(plan.describe())
    if summary is not None:
        payload["repeats"] = {k: {"mean": m, "std": s} for k, (m, s) in summary.items()}
    if args.json:
        print_json(payload)
    else:
        ci = ev.auc_ci
        print(
            f"saved {folder}  ({split}: accuracy {ev.accuracy:.3f}, AUC {ev.auc:.3f} "
            f"[{ci[0]:.3f}–{ci[1]:.3f}], {run.result.epochs_run} epochs in "
            f"{run.result.seconds:.1f}s)"
        )
        print(f"  {run.result.jit_reason}")
        if args.logdir:
            from medviz.training_logs import tensorboard_command

            print(f"  logs: {args.logdir}  (view: {tensorboard_command(args.logdir)})")
        if run.result.weights is not None:
            print(f"  weights: {run.result.weights.describe()}")
        if summary is not None:
            from medviz.metrics import format_mean_std

            for key, (mean, std) in summary.items():
                print(f"  {key}: {format_mean_std(mean, std)} over {args.repeats} runs")
    return EXIT_OK


def _modality(source: str) -> str:
    from medviz.data.registry import DATASETS

    spec = DATASETS.get(source)
    return spec.modality if spec else "unknown"


def load_for_model(
    source: str,
    card,
    *,
    limit_per_class: int | None = None,
    classes: str | None = None,
    group_pattern: str | None = None,
):
    """``source`` at the model's input size/channels, labels in the model's order.

    :func:`medviz.services.datasets.dataset_for_model` (shared with the app) with
    the CLI's hint: a class mismatch names the ``--classes`` option.
    """
    from medviz.services.datasets import dataset_for_model

    return dataset_for_model(
        source,
        card,
        limit_per_class=limit_per_class,
        classes=classes,
        group_pattern=group_pattern,
        mismatch_hint=(
            f"name the data's classes with --classes, e.g. --classes {','.join(card.class_names)}"
        ),
    )


def _with_threshold_policy(bundle, data, policy: str):
    """``bundle`` with its card's threshold replaced as ``--threshold-policy`` asks.

    Fitted policies use the validation split of ``data``. Returns the bundle
    (unchanged for ``card`` and for multi-class models) and the choice (or ``None``).
    """
    from dataclasses import replace

    from medviz.pipeline import operating_threshold
    from medviz.store import ModelBundle

    choice = operating_threshold(bundle, data, policy)
    if choice is None or policy == "card":
        return bundle, choice
    card = replace(
        bundle.card,
        threshold=choice.threshold,
        threshold_method=choice.method,
        threshold_reason=choice.reason,
    )
    return ModelBundle(model=bundle.model, card=card, path=bundle.path), choice


def _threshold_payload(choice) -> dict[str, object]:
    if choice is None:
        return {"threshold_method": "argmax", "threshold_reason": "more than two classes"}
    return {"threshold_method": choice.method, "threshold_reason": choice.reason}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from medviz.metrics import parse_threshold_policy
    from medviz.pipeline import evaluate_split
    from medviz.store import load_bundle

    if args.threshold_policy != "card":
        parse_threshold_policy(args.threshold_policy)  # bad input fails before loading
    bundle = load_bundle(args.model)
    data = load_for_model(
        args.data,
        bundle.card,
        limit_per_class=args.limit_per_class,
        classes=args.classes,
        group_pattern=args.group_pattern,
    )
    # the bar starts once the inputs are known good: a bad one stays a lone error line
    progress = Progress(2, label="evaluate", unit="stage")
    progress.update(0, note=f"predicting {args.split}, bootstrap {args.bootstrap}")
    bundle, choice = _with_threshold_policy(bundle, data, args.threshold_policy)
    ev = evaluate_split(bundle, data, args.split, n_bootstrap=args.bootstrap)
    progress.update(2, note="done")
    progress.close()
    payload = {
        "model": str(args.model),
        "data": data.name,
        "split": args.split,
        **ev.to_dict(),
        **_threshold_payload(choice),
    }
    if args.json:
        print_json(payload)
    else:
        ci = ev.auc_ci
        rule = "argmax" if ev.threshold is None else f"threshold {ev.threshold:.3f}"
        print(
            f"{data.name} [{args.split}] n={ev.n}: accuracy {ev.accuracy:.4f}, "
            f"AUC {ev.auc:.4f} [95% CI {ci[0]:.4f}–{ci[1]:.4f}], ECE {ev.ece:.4f} "
            f"({rule}, {payload['threshold_method']})"
        )
        for row in ev.per_class:
            print(
                f"  {row.name:<20} sens {row.recall:.3f}  spec {row.specificity:.3f}  "
                f"prec {row.precision:.3f}  F1 {row.f1:.3f}  (n={row.support})"
            )
    return EXIT_OK


def _int_list(text: str, *, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise MedvizError(f"{option} needs comma-separated integers, got {text!r}") from None


def cmd_stress(args: argparse.Namespace) -> int:
    from medviz.metrics import parse_threshold_policy
    from medviz.store import HF_PREFIX, load_bundle, write_card_stress
    from medviz.stress import SEVERITIES, SHIFTS, stress_split

    shifts = tuple(s.strip() for s in args.shifts.split(",") if s.strip()) if args.shifts else None
    for name in shifts or ():
        if name not in SHIFTS:
            raise MedvizError(f"unknown shift {name!r} in --shifts; choose from {list(SHIFTS)}")
    severities = _int_list(args.severities, option="--severities") if args.severities else None
    if severities is not None and not (severities and set(severities) <= set(SEVERITIES)):
        raise MedvizError(f"--severities must be a comma list from 1–5, got {args.severities!r}")
    if args.max_images is not None and args.max_images < 1:
        raise MedvizError(f"--max-images must be at least 1, got {args.max_images}")
    if args.threshold_policy != "card":
        parse_threshold_policy(args.threshold_policy)
        if args.write_card:
            raise MedvizError(
                "--write-card records the card's own threshold; drop --threshold-policy "
                f"{args.threshold_policy!r} (or re-train with it)"
            )
    if args.write_card and str(args.model).startswith(HF_PREFIX):
        raise MedvizError(f"--write-card needs a local model folder, got {args.model}")
    bundle = load_bundle(args.model)
    data = load_for_model(args.data, bundle.card, limit_per_class=args.limit_per_class)
    bundle, choice = _with_threshold_policy(bundle, data, args.threshold_policy)
    # The bar is on stderr: under --json stdout stays one JSON document.
    progress = Progress(1, label="stress", unit="severity")

    def on_progress(done: int, total: int) -> None:
        progress.total = total
        progress.update(done, note="severities done (clean first)")

    options: dict[str, object] = {"max_images": args.max_images, "seed": args.seed}
    if shifts:
        options["shifts"] = shifts
    if severities:
        options["severities"] = severities
    report = stress_split(bundle, data, args.split, on_progress=on_progress, **options)
    progress.close()
    written = None
    if args.write_card:
        if bundle.path is None:
            raise MedvizError(f"--write-card needs a local model folder, got {args.model}")
        write_card_stress(bundle.path, report.to_dict())
        written = str(bundle.path)
    payload = {
        "model": str(args.model),
        "data": data.name,
        **report.to_dict(),
        **_threshold_payload(choice),
        "summary": report.summary(),
        "card_written": written,
    }
    if args.json:
        print_json(payload)
        return EXIT_OK
    rule = "argmax" if report.threshold is None else f"threshold {report.threshold:.3f}"
    print(
        f"{data.name} [{args.split}] n={report.n} of {report.n_available} ({rule}): clean "
        f"accuracy {report.clean_accuracy:.3f}, AUC {report.clean_auc:.3f}; "
        f"{report.seconds:.1f}s"
    )
    print(f"  {'shift':<12}" + "".join(f"  sev {s}: acc / AUC " for s in report.severities))
    for i, name in enumerate(report.shifts):
        cells = "".join(
            f"  {report.accuracy[i, j]:6.3f} / {report.auc[i, j]:5.3f} "
            for j in range(len(report.severities))
        )
        print(f"  {name:<12}{cells}")
    print(f"  worst shift: {report.worst_shift}")
    if written:
        print(f"  stress table written to {written}/card.json and README.md")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from medviz.data.images import decode_image
    from medviz.explain import Explainer
    from medviz.services.predict import classify
    from medviz.store import load_bundle

    bundle = load_bundle(args.model)
    explainer = Explainer(bundle.model)
    failures = 0
    for file in args.files:
        try:
            decoded = decode_image(Path(file))
            row = classify(bundle, explainer, decoded, name=file, heatmap=False).to_json()
        except (MedvizError, OSError) as err:
            failures += 1
            row = {"file": file, "error": str(err)}
        if args.json:
            print_json(row)
        elif "error" in row:
            print(f"{file}: error: {row['error']}", file=sys.stderr)
        else:
            flag = "  [unlike the training data]" if row["ood"] else ""
            print(f"{file}: {row['prediction']} ({max(row['probabilities'].values()):.3f}){flag}")
            for warning in row["warnings"]:
                print(f"  warning: {warning}")
    return EXIT_PARTIAL if failures else EXIT_OK


def cmd_fit_ood(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from medviz.ood.fit import fit_ood, write_detector
    from medviz.store import load_bundle

    bundle = load_bundle(args.model)
    if args.write_card and bundle.path is None:
        raise MedvizError(f"--write-card needs a model folder, got {args.model}")
    started = time.perf_counter()

    def progress(line: str) -> None:  # progress goes to stderr, the report to stdout
        sys.stderr.write(f"[{time.perf_counter() - started:5.0f}s] {line}\n")

    foreign = [s.strip() for s in args.foreign.split(",") if s.strip()] if args.foreign else None
    fit = fit_ood(
        bundle,
        data=args.data,
        sources=foreign,
        per_source=args.per_source,
        target_rate=args.target_rate,
        seed=args.seed,
        progress=progress,
        also_in_domain=[s.strip() for s in args.also_in_domain.split(",") if s.strip()],
    )
    detector = replace(
        fit.detector,
        rates={**fit.detector.rates, "command": shlex.join(["python", "-m", "medviz", *args.argv])},
    )
    report = {"model": str(args.model), **fit.summary(), "rates": detector.rates}
    if args.write_card:
        report["written"] = str(write_detector(bundle, detector))
    if args.json:
        print_json(report)
    else:
        rates = detector.rates
        print(f"{args.model}: limit {detector.limit:.3f}, layers {', '.join(detector.layer_names)}")
        print(
            f"  in-domain flagged: test {rates['in_domain_test']:.1%} (n={rates['n_test']}), "
            f"val out-of-fold {rates['in_domain_val_out_of_fold']:.1%}"
        )
        for name, row in rates["foreign"].items():
            loo = row["leave_one_out"]
            loo_text = "–" if loo is None else f"{loo:.1%}"
            print(
                f"  {name:<22} {row['modality']:<14} flagged {row['flagged']:.1%}, "
                f"left out of the fit {loo_text} (n={row['n']})"
            )
        for name, row in rates["same_modality"].items():
            print(f"  {name:<22} same modality  flagged {row['flagged']:.1%} (n={row['n']})")
        for note in fit.notes:
            print(f"  note: {note}")
        if args.write_card:
            print(f"  written: {report['written']}")
    return EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    from medviz.baseline import evaluate_baseline
    from medviz.data import load_dataset

    data = load_dataset(
        args.data,
        image_size=args.image_size,
        limit_per_class=args.limit_per_class,
        group_pattern=args.group_pattern,
    )
    ev = evaluate_baseline(data, split=args.split, threshold=args.threshold)
    # "threshold" is the grey level here (the evaluation's own decision threshold is argmax).
    payload = {"data": data.name, "split": args.split, **ev.to_dict(), "threshold": args.threshold}
    if args.json:
        print_json(payload)
    else:
        print(
            f"pixel-threshold baseline ({args.threshold}) on {data.name} [{args.split}]: "
            f"accuracy {ev.accuracy:.4f}, AUC {ev.auc:.4f}"
        )
    return EXIT_OK


# --- parser ------------------------------------------------------------------------------------


def add_transfer_flags(p: argparse.ArgumentParser) -> None:
    """``--pretrained``, ``--transfer-mode`` and ``--fine-tune-from`` (transfer architectures)."""
    p.add_argument(
        "--pretrained",
        default=None,
        metavar="none|imagenet|medviz|PATH",
        help="initial weights of a transfer architecture: none (random, explicit), imagenet "
        "(Keras cache, else Keras' download), medviz (the shipped medical backbone) or a "
        "weights file; missing weights are an error (default: the architecture's own)",
    )
    p.add_argument(
        "--transfer-mode",
        choices=("feature-extractor", "fine-tune"),
        default=None,
        help="feature-extractor: backbone frozen, only the head trains; fine-tune (default): "
        "backbone layers from --fine-tune-from on train too",
    )
    p.add_argument(
        "--fine-tune-from",
        type=int,
        default=None,
        metavar="N",
        help="fine-tune: backbone layers below index N stay frozen (unfreeze depth; 0 = all)",
    )


def build_parser() -> CliParser:
    """The full argument parser."""
    from medviz.data.registry import DEFAULT_DATASET

    # Architecture names are checked by TrainConfig, not argparse choices: listing them here
    # would import Keras (3 s) for every `--help`.
    default_arch = "fast-cnn"

    parser = CliParser(
        prog="medviz",
        description="Train, test and explain CNNs on medical images.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbose_help = "show TensorFlow's start-up messages on stderr (hidden by default)"
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    quiet_help = "no progress bars on stderr"
    parser.add_argument("--quiet", action="store_true", help=quiet_help)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)

    def add(name: str, handler, help_text: str) -> CliParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        p.set_defaults(handler=handler)
        return p

    add("datasets", cmd_datasets, "List the dataset registry.")

    def add_stream(p: CliParser) -> None:
        p.add_argument(
            "--stream",
            action="store_true",
            help="decode each image once into a disk cache (MEDVIZ_CACHE_DIR) and read batches "
            "from it, so memory stays flat for datasets larger than memory (folders and zips)",
        )

    def add_group_pattern(p: CliParser) -> None:
        p.add_argument(
            "--group-pattern",
            metavar="REGEX",
            default=None,
            help="regular expression whose first group, searched in each file's relative path, "
            "is the patient id: one patient's images stay in one split (default: the "
            "registry's; else near-duplicate clusters)",
        )

    p = add("inspect", cmd_inspect, "Dataset health report (counts, sizes, duplicates, leakage).")
    p.add_argument("--data", required=True, help="registry name, folder, .zip or .npz")
    p.add_argument(
        "--against",
        default=None,
        metavar="DATA",
        help="a second dataset (name, folder, .zip or .npz): report the images both share "
        "(resized, cropped or re-encoded copies), e.g. pneumoniamnist vs chest-xray-pneumonia",
    )
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument(
        "--show-pairs", type=int, default=10, metavar="N", help="near-duplicate pairs listed"
    )
    add_group_pattern(p)
    add_stream(p)

    p = add("train", cmd_train, "Train a model and write its folder (model + card).")
    p.add_argument("--data", default=DEFAULT_DATASET, help="registry name, folder, .zip or .npz")
    p.add_argument("--arch", default=default_arch, help="architecture (see medviz.zoo)")
    p.add_argument(
        "--config",
        default=None,
        help="JSON/YAML file of TrainConfig fields (or a model's card.json: its recipe); "
        "training flags given here override it",
    )
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--channels", type=int, choices=(1, 3), default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 3e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="train R times, report mean ± std")
    p.add_argument(
        "--augment",
        default="default",
        help="'none', 'default' (the dataset's recommended set; else rotation 5°, zoom 120 %%) "
        "or a list such as 'rotation=5,noise=20,hflip'",
    )
    p.add_argument("--imbalance", choices=("none", "class-weights", "undersample"), default="none")
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience (0 = off)")
    p.add_argument(
        "--precise-bn",
        action="store_true",
        help="after training, recompute the BatchNorm statistics on the un-augmented training "
        "images (small datasets: the moving averages of a few batches are far off)",
    )
    add_transfer_flags(p)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument("--name", default=None, help="model name in the card (default: folder name)")
    p.add_argument("--out", default=None, help="model folder to write (required)")
    p.add_argument("--runs", default="runs", help="run store folder (config, history, model)")
    p.add_argument(
        "--logdir",
        default=None,
        metavar="DIR",
        help="write TensorBoard logs (scalars and Grad-CAM images of a few validation images "
        "per epoch) and DIR/history.csv; needs the tensorboard extra",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run (runs/<id>) from its last finished epoch, with the "
        "settings it was started with",
    )
    p.add_argument(
        "--threshold-policy",
        default="fixed",
        help="binary operating threshold: 'fixed' (0.5 on calibrated probabilities, default), "
        "'fixed:0.4', 'youden' or 'sensitivity:0.95' (fitted on validation)",
    )
    add_group_pattern(p)
    add_stream(p)
    p.add_argument(
        "--distribute",
        choices=("none", "mirrored", "multiworker"),
        default="none",
        help="'mirrored': every local GPU (or $MEDVIZ_LOGICAL_CPUS CPU devices); "
        "'multiworker': the machines in $TF_CONFIG, run on each (see docs/distributed.md)",
    )

    p = add("evaluate", cmd_evaluate, "Evaluate a model on a dataset (cross-dataset aware).")
    p.add_argument("--model", required=True, help="model folder, .keras file or hf://user/repo")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument(
        "--threshold-policy",
        default="card",
        help="binary threshold: 'card' (default), 'fixed', 'fixed:0.4', 'youden' or "
        "'sensitivity:0.95' (fitted on the data's validation split)",
    )
    p.add_argument(
        "--classes",
        default=None,
        metavar="A,B,…",
        help="names for the data's classes, one per class in label order (numbered labels and "
        "folders by number), or pairs '0=normal,1=pneumonia', to match the model's classes",
    )
    add_group_pattern(p)

    p = add("stress", cmd_stress, "Accuracy and AUC under controlled image shifts (severity 1–5).")
    p.add_argument("--model", required=True, help="model folder, .keras file or hf://user/repo")
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val", choices=("train", "val", "test", "all"))
    p.add_argument("--max-images", type=int, default=None, help="seeded sample (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of the shifts")
    p.add_argument("--shifts", default=None, help="comma list (default: all shifts)")
    p.add_argument("--severities", default=None, help="comma list from 1–5 (default: all)")
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument(
        "--threshold-policy",
        default="card",
        help="as for evaluate: 'card' (default), 'fixed', 'youden', 'sensitivity:0.95'",
    )
    p.add_argument(
        "--write-card",
        action="store_true",
        help="store the table in the model folder's card.json and README.md (no retraining)",
    )

    p = add("predict", cmd_predict, "Classify image files (one JSON line per file).")
    p.add_argument("--model", required=True)
    p.add_argument("files", nargs="+", metavar="FILE")

    p = add(
        "fit-ood",
        cmd_fit_ood,
        "Fit and measure a model's out-of-distribution detector (optionally into its card).",
    )
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", default=None, help="in-domain dataset (default: the card's)")
    p.add_argument(
        "--foreign", default=None, help="comma list of sources (default: all; see medviz.ood)"
    )
    p.add_argument("--per-source", type=int, default=400, help="images per foreign source")
    p.add_argument("--target-rate", type=float, default=0.02, help="in-domain flag rate")
    p.add_argument(
        "--also-in-domain",
        default="",
        help="comma list of further datasets the model is meant to read (their images count "
        "as in-domain), e.g. pneumoniamnist for a chest model trained for 28 px images",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write-card", action="store_true", help="store it in card.json/README.md")

    p = add("baseline", cmd_baseline, "Classical pixel-threshold counting baseline.")
    p.add_argument("--data", required=True)
    p.add_argument("--threshold", type=int, default=120)
    p.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--limit-per-class", type=int, default=None)
    add_group_pattern(p)

    from medviz.cli_share import add_commands as add_share_commands  # push, export

    add_share_commands(add)

    from medviz.cli_explore import add_commands as add_explore_commands

    add_explore_commands(add)

    from medviz import cli_transfer, cli_weights

    cli_weights.add_commands(add)
    cli_transfer.add_commands(add)
    try:
        from medviz.explain.commands import register
    except ImportError:  # explanations not installed in this build
        register = None
    if register is not None:
        register(sub)
    from medviz.cli_shortcut import add_commands as add_shortcut_commands

    add_shortcut_commands(add)
    from medviz.cli_reproduce import add_commands as add_reproduce_commands

    add_reproduce_commands(add)
    for command in sub.choices.values():  # `medviz predict --verbose …` too
        # SUPPRESS: the sub-command's default does not undo `medviz --verbose predict …`.
        command.add_argument(
            "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help
        )
        command.add_argument(
            "--quiet", action="store_true", default=argparse.SUPPRESS, help=quiet_help
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in model cards as the command that reproduces the model
    if not args.verbose:
        from medviz.quiet import silence_tensorflow_startup

        silence_tensorflow_startup()
    set_quiet(args.quiet)
    try:
        return int(args.handler(args))
    except MedvizError as err:
        code, message = exit_code_for(err), " ".join(str(err).split())
    except FileNotFoundError as err:
        code, message = EXIT_BAD_INPUT, f"file not found: {err.filename}"
    except OSError as err:  # disk full, read-only folder, permission denied …
        where = f" {err.filename}" if err.filename else ""
        code, message = exit_code_for(err), f"could not read or write{where}: {err.strerror or err}"
    except KeyboardInterrupt:
        code, message = 130, "interrupted"
    except Exception as err:  # a bug or a library failure: one line, the traceback on request
        if args.verbose:
            raise
        text = " ".join(str(err).split())[:300]
        code = EXIT_RUNTIME
        message = f"{type(err).__name__}: {text} (run again with --verbose for details)"
    close_progress()
    sys.stderr.write(f"error: {message}\n")
    return code
