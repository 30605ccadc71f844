"""``medviz compare-transfer``: from scratch vs frozen vs fine-tuned backbone, side by side.

See :mod:`medviz.transfer`. Prints one row per arm (held-out accuracy, AUC,
time); ``--out`` also writes the validation curves (HTML) and the rows (JSON).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from medviz.cli_support import EXIT_OK, CliParser, print_json


def cmd_compare_transfer(args: argparse.Namespace) -> int:
    """Run the three arms and report them."""
    from medviz.augment import AugmentConfig
    from medviz.data import load_dataset
    from medviz.data.registry import DATASETS
    from medviz.training import TrainConfig, resolve_config_weights
    from medviz.transfer import compare_transfer, comparison_figure, subsample_train

    spec = DATASETS.get(args.data)
    config = TrainConfig(
        arch=args.arch,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        early_stopping_patience=args.patience if args.patience > 0 else None,
        augment=spec.augment if spec is not None else AugmentConfig(),
        pretrained=args.pretrained,
        jit_compile=False,
        precise_bn=args.precise_bn,
    )
    weights = resolve_config_weights(config)  # missing weights fail before the data loads
    if not args.json:
        print(f"weights (frozen and fine-tuned arms): {weights.describe()}")
    data = load_dataset(
        args.data,
        image_size=args.image_size,
        channels=args.channels,
        seed=args.seed,
        limit_per_class=args.limit_per_class,
    )
    data = subsample_train(data, args.labels, seed=args.seed)

    def report(result) -> None:
        if not args.json:
            print(
                f"  {result.arm:<18} test accuracy {result.accuracy:.3f}  AUC {result.auc:.3f}  "
                f"{result.seconds:6.1f} s  ({result.epochs_run} epochs, best {result.best_epoch})"
            )

    results = compare_transfer(data, config, fine_tune_from=args.fine_tune_from, on_arm_end=report)
    rows = [
        {
            "arm": r.arm,
            "accuracy": r.accuracy,
            "auc": r.auc,
            "seconds": round(r.seconds, 1),
            "epochs_run": r.epochs_run,
            "best_epoch": r.best_epoch,
            "trainable_params": r.trainable_params,
            "weights": r.weights,
        }
        for r in results
    ]
    payload = {
        "data": data.name,
        "arch": args.arch,
        "n_train": int((data.splits == "train").sum()),
        "n_test": int((data.splits == "test").sum()),
        "arms": rows,
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare-transfer.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
        comparison_figure(results).write_html(out / "compare-transfer.html")
        payload["written"] = str(out)
    if args.json:
        print_json(payload)
    elif args.out:
        print(f"  curves and table written to {args.out}")
    return EXIT_OK


def add_commands(add: Callable[[str, Callable, str], CliParser]) -> None:
    """Register ``compare-transfer`` on the CLI's parser."""
    p = add(
        "compare-transfer",
        cmd_compare_transfer,
        "Train a transfer architecture from scratch, frozen and fine-tuned; compare on test.",
    )
    p.add_argument("--data", required=True, help="registry name, folder, .zip or .npz")
    p.add_argument("--arch", default="medviz-backbone", help="a transfer architecture")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--channels", type=int, choices=(1, 3), default=None)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of every arm")
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience (0 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--labels", type=int, default=None, help="training labels to keep (default: all)"
    )
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument(
        "--precise-bn",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="recompute every arm's BatchNorm statistics on the training images after training "
        "(default on: with a few batches an epoch, the moving averages are still far off)",
    )
    p.add_argument("--out", default=None, help="folder for compare-transfer.html/.json")
    p.add_argument(
        "--pretrained",
        default=None,
        metavar="imagenet|medviz|PATH",
        help="weights of the frozen and fine-tuned arms (default: the architecture's own)",
    )
    p.add_argument(
        "--fine-tune-from",
        type=int,
        default=0,
        metavar="N",
        help="fine-tuned arm: backbone layers below index N stay frozen (0 = all train)",
    )
