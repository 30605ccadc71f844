"""``python -m bench.transfer``: does the MedViz backbone transfer to data it never saw?

For each target dataset (none of them in the backbone's pretraining: CT,
mammogram patches, chest vs abdomen radiographs), each number of training
labels and each seed, trains ``medviz-backbone`` three ways with
:func:`medviz.transfer.compare_transfer` (from scratch, frozen feature
extractor, fine-tuned) and scores it on the registry's held-out test split
(grouped splits; the best epoch is picked on validation). Writes
``bench/results/transfer.json`` (every run; an interrupted run resumes from it)
and ``bench/results/transfer.md`` (mean ± std over seeds).

    nice -n 15 python -m bench.transfer                 # the full table (~1 h on 2 busy cores)
    python -m bench.transfer --datasets chest-vs-abdomen --labels all --seeds 1 --out /tmp/t
    nice -n 15 python -m bench.transfer --datasets chest-vs-abdomen --labels 25,all --precise-bn
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"
README_BEGIN = "<!-- transfer:begin (python -m bench.transfer) -->"
README_END = "<!-- transfer:end -->"
DATASETS = ("covid-ct", "mammo-microcalc", "chest-vs-abdomen")
LABELS = ("25", "100", "all")
ARMS = ("scratch", "feature-extractor", "fine-tune")
ARM_TITLES = {
    "scratch": "from scratch",
    "feature-extractor": "frozen backbone",
    "fine-tune": "fine-tuned backbone",
}
#: The recipe every arm shares (small on purpose: 2 CPU cores).
RECIPE: dict[str, Any] = {
    "arch": "medviz-backbone",
    "image_size": 64,
    "epochs": 15,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "early_stopping_patience": 5,
    "reduce_lr_patience": 2,
    "monitor": "val_auc",
    "jit_compile": False,
}


BN_TITLES = {False: "training average", True: "recomputed (precise BN)"}
"""The BatchNorm statistics a run is scored with: Keras' moving average of the training
batches, or one pass of the un-augmented training images after training
(``TrainConfig.precise_bn``). With 53 images and batch 16 a run takes ~60 steps, so the
moving average (momentum 0.99) still holds ~half its initial value: the ranking (AUC) is
right, the 0.5 threshold is not."""


DEFAULT_BACKBONE = "medviz-backbone-v1"
"""The shipped backbone's name: rows without a ``backbone`` field used it."""


def _key(
    dataset: str,
    labels: str,
    seed: int,
    arm: str,
    *,
    precise_bn: bool = False,
    backbone: str = DEFAULT_BACKBONE,
) -> str:
    key = f"{dataset}|{labels}|{seed}|{arm}" + ("|precise-bn" if precise_bn else "")
    return key + (f"|bb={backbone}" if backbone != DEFAULT_BACKBONE else "")


def backbone_name(weights: Path) -> str:
    """The name in the ``backbone.json`` beside a backbone weights file (else the file's stem)."""
    card = weights.parent / "backbone.json"
    if card.is_file():
        return str(json.loads(card.read_text(encoding="utf-8")).get("name", weights.stem))
    return weights.stem


def run(
    datasets: list[str],
    labels: list[str],
    seeds: list[int],
    out: Path,
    *,
    epochs: int,
    part: str | None = None,
    precise_bn: bool = False,
    backbone: Path | None = None,
) -> dict[str, Any]:
    """Run every missing cell, saving the JSON after each; returns the JSON payload.

    ``precise_bn`` runs the recipe with ``TrainConfig.precise_bn`` (rows of their own).
    ``backbone``: another backbone weights file (e.g. another pretraining method) for the
    frozen and fine-tuned arms, in rows of their own (from scratch does not depend on it).

    ``part`` names a separate ``transfer.part-<part>.json`` so several processes can
    share the work (e.g. one per dataset); :func:`merged` combines them.
    """
    from medviz.augment import AugmentConfig
    from medviz.data.registry import get_spec
    from medviz.training import TrainConfig
    from medviz.transfer import compare_transfer, subsample_train

    json_path = out / (f"transfer.part-{part}.json" if part else "transfer.json")
    name = backbone_name(backbone) if backbone else DEFAULT_BACKBONE
    arms = ARMS if backbone is None else ("feature-extractor", "fine-tune")
    cell = {"precise_bn": precise_bn, "backbone": name}
    payload = merged(out, epochs=epochs)
    out.mkdir(parents=True, exist_ok=True)
    for dataset in datasets:
        spec = get_spec(dataset)
        if not spec.is_available():
            print(f"{dataset}: not available, skipped", flush=True)
            continue
        full = spec.load(image_size=RECIPE["image_size"], channels=1, seed=0)
        for n in labels:
            for seed in seeds:
                # Re-read: another process (--part) may have done this cell meanwhile.
                done = {**merged(out, epochs=epochs)["runs"], **payload["runs"]}
                todo = [a for a in arms if _key(dataset, n, seed, a, **cell) not in done]
                if not todo:
                    continue
                data = subsample_train(full, None if n == "all" else int(n), seed=seed)
                base = TrainConfig(
                    **{**RECIPE, "epochs": epochs},
                    seed=seed,
                    precise_bn=precise_bn,
                    pretrained=str(backbone) if backbone else None,
                    augment=spec.augment if spec.augment else AugmentConfig(),
                )
                started = time.perf_counter()
                results = compare_transfer(data, base, arms=todo)
                for r in results:
                    payload["runs"][_key(dataset, n, seed, r.arm, **cell)] = {
                        "dataset": dataset,
                        "labels": n,
                        "n_train": int((data.splits == "train").sum()),
                        "n_test": int((data.splits == "test").sum()),
                        "seed": seed,
                        "arm": r.arm,
                        "precise_bn": precise_bn,
                        "backbone": name,
                        "accuracy": r.accuracy,
                        "auc": r.auc,
                        "seconds": round(r.seconds, 1),
                        "epochs_run": r.epochs_run,
                        "best_epoch": r.best_epoch,
                        "weights": r.weights,
                    }
                json_path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
                line = ", ".join(f"{r.arm} auc {r.auc:.3f} acc {r.accuracy:.3f}" for r in results)
                took = time.perf_counter() - started
                print(f"{dataset} n={n} seed={seed}: {line} ({took:.0f}s)", flush=True)
    return payload


def merged(out: Path, *, epochs: int) -> dict[str, Any]:
    """``transfer.json`` and every ``transfer.part-*.json`` in ``out``, runs combined."""
    payload: dict[str, Any] = {"recipe": {**RECIPE, "epochs": epochs}, "runs": {}}
    for path in [out / "transfer.json", *sorted(out.glob("transfer.part-*.json"))]:
        if path.exists():
            payload["runs"].update(json.loads(path.read_text(encoding="utf-8")).get("runs", {}))
    return payload


def _mean_std(values: list[float]) -> tuple[float, float]:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    return float(np.nanmean(arr)), float(np.nanstd(arr))


def summarise(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (dataset, labels, BN statistics, arm): mean ± std over seeds."""
    groups: dict[tuple[str, str, bool, str], list[dict[str, Any]]] = {}
    for row in payload["runs"].values():
        if row.get("backbone", DEFAULT_BACKBONE) != DEFAULT_BACKBONE:
            continue  # other pretrainings: backbone_rows()
        key = (row["dataset"], row["labels"], bool(row.get("precise_bn")), row["arm"])
        groups.setdefault(key, []).append(row)
    rows = []
    for dataset in DATASETS:
        for n in LABELS:
            for precise_bn in (False, True):
                for arm in ARMS:
                    cell = groups.get((dataset, n, precise_bn, arm))
                    if not cell:
                        continue
                    acc = _mean_std([r["accuracy"] for r in cell])
                    auc = _mean_std([r["auc"] for r in cell])
                    rows.append(
                        {
                            "dataset": dataset,
                            "labels": n,
                            "n_train": cell[0]["n_train"],
                            "n_test": cell[0]["n_test"],
                            "arm": arm,
                            "precise_bn": precise_bn,
                            "seeds": len(cell),
                            "accuracy_mean": acc[0],
                            "accuracy_std": acc[1],
                            "auc_mean": auc[0],
                            "auc_std": auc[1],
                            "seconds_mean": _mean_std([r["seconds"] for r in cell])[0],
                        }
                    )
    return rows


def _backbone_order(key: tuple[str, str, str, bool, str]) -> tuple:
    dataset, labels, arm, precise_bn, backbone = key
    shipped_first = (backbone != DEFAULT_BACKBONE, backbone)
    return (
        DATASETS.index(dataset),
        LABELS.index(labels),
        precise_bn,
        ARMS.index(arm),
        shipped_first,
    )


def backbone_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Backbones side by side: one row per (dataset, labels, arm, backbone), mean ± std.

    Only the cells (dataset, labels, arm, BN statistics) that another backbone than the
    shipped one was run on, with the shipped one's row beside it.
    """
    groups: dict[tuple[str, str, str, bool, str], list[dict[str, Any]]] = {}
    for row in payload["runs"].values():
        if row["arm"] == "scratch":
            continue
        backbone = row.get("backbone", DEFAULT_BACKBONE)
        key = (row["dataset"], row["labels"], row["arm"], bool(row.get("precise_bn")), backbone)
        groups.setdefault(key, []).append(row)
    others = {k[:4] for k in groups if k[4] != DEFAULT_BACKBONE}
    rows = []
    for key in sorted(groups, key=_backbone_order):
        if key[:4] not in others:
            continue
        cell = groups[key]
        acc = _mean_std([r["accuracy"] for r in cell])
        auc = _mean_std([r["auc"] for r in cell])
        rows.append(
            {
                "dataset": key[0],
                "labels": key[1],
                "arm": key[2],
                "precise_bn": key[3],
                "backbone": key[4],
                "seeds": len(cell),
                "accuracy_mean": acc[0],
                "accuracy_std": acc[1],
                "auc_mean": auc[0],
                "auc_std": auc[1],
            }
        )
    return rows


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, each with its measured verdict."""
    by = {(r["dataset"], r["labels"], r["arm"]): r for r in rows if not r["precise_bn"]}
    lines = []
    for dataset in ("covid-ct", "mammo-microcalc"):
        fine, scratch = by.get((dataset, "100", "fine-tune")), by.get((dataset, "100", "scratch"))
        if fine and scratch:
            gain = fine["auc_mean"] - scratch["auc_mean"]
            verdict = "met" if gain >= 0.05 else "NOT met"
            lines.append(
                f"- {dataset}, 100 labels: fine-tuned AUC {fine['auc_mean']:.3f} vs scratch "
                f"{scratch['auc_mean']:.3f} (gain {gain:+.3f}; target ≥ +0.05): **{verdict}**"
            )
    cva = [r for r in rows if r["dataset"] == "chest-vs-abdomen" and r["labels"] == "all"]
    if cva:
        best = max(cva, key=lambda r: r["accuracy_mean"])
        verdict = "met" if best["accuracy_mean"] >= 0.95 else "NOT met"
        lines.append(
            f"- chest-vs-abdomen, all {best['n_train']} training images: best accuracy "
            f"{best['accuracy_mean']:.3f} ± {best['accuracy_std']:.3f} ({ARM_TITLES[best['arm']]}, "
            f"BN statistics {BN_TITLES[best['precise_bn']]}, {best['seeds']} seeds) on "
            f"{best['n_test']} held-out images (target ≥ 0.95): **{verdict}**"
        )
    return lines


def readme_block(payload: dict[str, Any]) -> str:
    """The README's lines: the targets and their verdicts, pointing at the table."""
    lines = targets(summarise(payload))
    seeds = sorted({r["seed"] for r in payload["runs"].values()})
    head = (
        f"Measured ({len(payload['runs'])} runs, seeds {seeds}, `bench/results/transfer.md`; "
        "held-out test splits):"
    )
    return "\n".join([head, *lines])


def render(payload: dict[str, Any], *, backbone_card: dict[str, Any] | None) -> str:
    """The Markdown report."""
    rows = summarise(payload)
    recipe = payload["recipe"]
    head = [
        "# Transfer learning: MedViz backbone vs from scratch",
        "",
        "Generated by `python -m bench.transfer` (do not edit by hand). Architecture "
        f"`{recipe['arch']}` at {recipe['image_size']} px; every arm shares one recipe: Adam "
        f"{recipe['learning_rate']}, batch {recipe['batch_size']}, ≤ {recipe['epochs']} epochs, "
        f"early stopping (patience {recipe['early_stopping_patience']}) and best epoch on "
        "val AUC; scored on the registry's grouped **test** split, never used for selection. "
        "Training labels are a class-stratified sample of the train split (seeded); val and "
        "test are whole. Mean ± std over seeds. *BN statistics*: scored with Keras' moving "
        "average of the training batches, or recomputed on one pass of the un-augmented "
        "training images after training (`precise_bn: true`, `--precise-bn` here).",
        "",
    ]
    if backbone_card:
        head += [
            f"Backbone `{backbone_card['name']}` (sha256 `{backbone_card['sha256'][:16]}…`): "
            f"{backbone_card['pretraining']}, pretrained in "
            f"{backbone_card['pretrain_seconds'] / 60:.1f} min on "
            f"{backbone_card['recipe']['machine']}, on "
            + ", ".join(d["dataset"] for d in backbone_card["data"])
            + ". None of the target datasets below was in pretraining.",
            "",
        ]
    table = [
        "| dataset | labels | n train | n test | arm | BN statistics | seeds | accuracy | AUC "
        "| time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['dataset']} | {r['labels']} | {r['n_train']} | {r['n_test']} | "
            f"{ARM_TITLES[r['arm']]} | {BN_TITLES[r['precise_bn']]} | {r['seeds']} | "
            f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} | "
            f"{r['auc_mean']:.3f} ± {r['auc_std']:.3f} | {r['seconds_mean']:.0f} |"
        )
    compared = backbone_rows(payload)
    section: list[str] = []
    if compared:
        section = [
            "",
            "## Backbones compared",
            "",
            "The same recipe with another backbone file (`--backbone PATH`), e.g. another "
            "pretraining method of the same trunk (`python -m tools.pretrain_backbone --method "
            "contrastive`); its pretraining is in the `backbone.json` beside the file.",
            "",
            "| dataset | labels | arm | BN statistics | backbone | seeds | accuracy | AUC |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in compared:
            section.append(
                f"| {r['dataset']} | {r['labels']} | {ARM_TITLES[r['arm']]} | "
                f"{BN_TITLES[r['precise_bn']]} | {r['backbone']} | {r['seeds']} | "
                f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} | "
                f"{r['auc_mean']:.3f} ± {r['auc_std']:.3f} |"
            )
    return "\n".join(head + table + section + ["", "## Targets", "", *targets(rows), ""])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--labels", default=",".join(LABELS), help="e.g. 25,100,all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-list", default=None, help="e.g. 2 (overrides --seeds)")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the json")
    parser.add_argument("--part", default=None, help="write transfer.part-PART.json (parallel)")
    parser.add_argument(
        "--precise-bn", action="store_true", help="recompute BatchNorm statistics after training"
    )
    parser.add_argument(
        "--backbone",
        type=Path,
        default=None,
        help="another backbone weights file for the frozen and fine-tuned arms (own rows)",
    )
    args = parser.parse_args(argv)
    from medviz.backbone import backbone_dir

    if not args.render_only:
        run(
            args.datasets.split(","),
            args.labels.split(","),
            [int(x) for x in args.seed_list.split(",")]
            if args.seed_list
            else list(range(args.seeds)),
            args.out,
            epochs=args.epochs,
            part=args.part,
            precise_bn=args.precise_bn,
            backbone=args.backbone,
        )
    payload = merged(args.out, epochs=args.epochs)
    if args.part is None:
        (args.out / "transfer.json").write_text(json.dumps(payload, indent=1) + "\n", "utf-8")
    card_file = backbone_dir() / "backbone.json"
    card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.exists() else None
    (args.out / "transfer.md").write_text(render(payload, backbone_card=card), encoding="utf-8")
    if args.out.resolve() == RESULTS and args.part is None:
        from medviz.docblocks import update_file

        update_file(README, README_BEGIN, README_END, readme_block(payload))
    print(f"wrote {args.out / 'transfer.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
