"""The command line of ``python -m tools.make_models`` (see :mod:`tools.make_models`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from tools.make_models.build import (
    build_cli_recipe,
    build_recipe,
    log_line,
    refresh_docs,
    saved_result,
)
from tools.make_models.docs import update_readme
from tools.make_models.recipes import (
    MAX_MODEL_BYTES,
    MODELS,
    REPO_ROOT,
    SHIPPED,
    CliRecipe,
    describe,
    get_recipe,
    recipes,
)
from tools.make_models.report import run_bench


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.make_models``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.make_models",
        description="Reproduce the shipped models (models/) and the bench results.",
    )
    parser.add_argument("--only", nargs="+", default=(), metavar="NAME", help="these models only")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="train the not-shipped models and write bench/results/models.{json,md}",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="with --bench: re-evaluate the models on disk without training",
    )
    parser.add_argument(
        "--docs-only",
        action="store_true",
        help="rewrite the command lines and README.md of the --only models from their cards",
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="rewrite README.md's table of shipped models from their cards (no training)",
    )
    parser.add_argument(
        "--repackage",
        action="store_true",
        help="re-run calibration, threshold policy, evaluation, stress test and card of the "
        "--only models from their saved model.keras (no training)",
    )
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--list", action="store_true", help="print the recipes as JSON")
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="output root holding models/, runs/bench-models/, bench/results/ and README.md "
        "(default: the checkout this tool lives in)",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    readme, models_dir = root / "README.md", root / MODELS
    if args.list:
        print(json.dumps([describe(r) for r in recipes(shipped=True, bench=True)], indent=2))
        return 0
    for name in args.only:
        get_recipe(name)  # fail fast on a typo
    if args.readme:
        changed = update_readme(readme, models_dir=models_dir)
        log_line("README.md " + ("updated" if changed else "already up to date"))
        return 0
    if args.docs_only:
        for name in args.only:
            log_line(f"{name}: docs refreshed in {refresh_docs(name, root=root)}")
        update_readme(readme, models_dir=models_dir)
        return 0
    if args.bench:
        only = [n for n in args.only if not get_recipe(n).shipped]
        run_bench(only=only, train=not args.report_only, root=root, n_bootstrap=args.bootstrap)
        return 0
    summaries = []
    for recipe in SHIPPED:
        if args.only and recipe.name not in args.only:
            continue
        if isinstance(recipe, CliRecipe):
            summary = build_cli_recipe(recipe, root=root)
        elif args.repackage:
            trained = saved_result(recipe, root=root)
            summary = build_recipe(recipe, root=root, n_bootstrap=args.bootstrap, trained=trained)
        else:
            summary = build_recipe(recipe, root=root, n_bootstrap=args.bootstrap)
        if summary["size_bytes"] > MAX_MODEL_BYTES:
            log_line(f"warning: {recipe.name} is {summary['size_bytes'] / 1e6:.1f} MB (> 15 MB)")
        summaries.append(summary)
    update_readme(readme, models_dir=models_dir)
    print(json.dumps(summaries))
    return 0
